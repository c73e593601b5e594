"""Asset keys that more than one domain refers to: one place, so no domain imports another for a key."""

from dagster import AssetKey

SCHEMA_KEY = AssetKey(["clickhouse", "schema"])  # ops: the applied ClickHouse DDL
TOPICS_KEY = AssetKey(["kafka", "topics"])  # ingest: the Kafka topics
REPLICA_DB_KEY = AssetKey(["clickhouse", "pg_repl"])  # cdc: the MaterializedPostgreSQL database
DEAD_LETTER_KEY = AssetKey(["dead_letter", "kafka_messages"])  # ingest: messages the consumers rejected


def raw_key(table: str) -> AssetKey:
    """ingest: ``raw.<table>``, filled by a Kafka-engine consumer."""
    return AssetKey(["raw", table])


def table_key(table: str) -> AssetKey:
    """cdc: ``pg_repl.<table>``, one replicated Postgres table."""
    return AssetKey(["pg_repl", table])
