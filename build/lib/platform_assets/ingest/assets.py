"""Ingestion domain: the Kafka topics the collector writes and ClickHouse consumes."""

from confluent_kafka.admin import NewPartitions, NewTopic
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, asset

from platform_assets.core.keys import DEAD_LETTER_KEY, SCHEMA_KEY, TOPICS_KEY, raw_key
from platform_assets.core.resources import KafkaResource
from platform_assets.ingest.topics import CONSUMED, TOPICS, partitions, replication_factor

OWNERS = ["team:data-platform"]


# Filled continuously by ClickHouse (Kafka engine + materialized views), not by Dagster runs:
# the consumer-lag sensor records observations on them.
RAW_SPECS = [
    AssetSpec(
        raw_key(t.raw_table),
        deps=[TOPICS_KEY, SCHEMA_KEY],
        group_name="ingest",
        owners=OWNERS,
        kinds={"clickhouse", "kafka"},
        description=f"raw.{t.raw_table}: one row per message on topic `{t.name}` as landed (at-least-once, so "
        "event_id can repeat; staging dedupes). Filled continuously by a Kafka-engine consumer.",
    )
    for t in CONSUMED
    if t.raw_table
]
DEAD_LETTER_SPEC = AssetSpec(
    DEAD_LETTER_KEY,
    deps=[TOPICS_KEY, SCHEMA_KEY],
    group_name="ingest",
    owners=OWNERS,
    kinds={"clickhouse"},
    description="dead_letter.kafka_messages: one row per message the consumers could not parse, with the "
    "error, topic, partition and offset.",
)
ADMIN_TIMEOUT_S = 30


@asset(key=TOPICS_KEY, group_name="ingest", owners=OWNERS, kinds={"kafka"})
def kafka_topics(context: AssetExecutionContext, kafka: KafkaResource) -> MaterializeResult:
    """The ingestion topics (agent_events, product_events, otlp_spans) with the configured
    partition count. Grain: one topic. Idempotent; a higher ``INGEST_TOPIC_PARTITIONS`` adds
    partitions to existing topics (Kafka cannot remove them)."""
    admin = kafka.admin()
    wanted = partitions()
    existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    created, grown = [], []
    new = [
        NewTopic(t.name, num_partitions=wanted, replication_factor=replication_factor())
        for t in TOPICS
        if t.name not in existing
    ]
    for name, future in (admin.create_topics(new) if new else {}).items():
        future.result(timeout=ADMIN_TIMEOUT_S)
        created.append(name)
    grow = [
        NewPartitions(t.name, wanted)
        for t in TOPICS
        if t.name in existing and len(existing[t.name].partitions) < wanted
    ]
    for name, future in (admin.create_partitions(grow) if grow else {}).items():
        future.result(timeout=ADMIN_TIMEOUT_S)
        grown.append(name)
    meta = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    layout = {t.name: len(meta[t.name].partitions) for t in TOPICS if t.name in meta}
    missing = [t.name for t in TOPICS if t.name not in layout]
    if missing:
        raise RuntimeError(f"topics {missing} are not visible on the broker after creation")
    context.log.info(f"topics: {layout}")
    return MaterializeResult(
        metadata={
            "partitions": MetadataValue.json(layout),
            "created_now": MetadataValue.json(created),
            "partitions_added_to": MetadataValue.json(grown),
        }
    )
