"""Re-attaching ClickHouse's Kafka engine tables (``kafka_queue``): new consumers, current views.

Two reasons to do it, both measured on this build (ClickHouse 26.9):

- A Kafka table's consumers push into the views it had when they started. A view created later
  on a table those views fill (``rollups.*_mv`` on ``raw.*``, clickhouse_ddl/010 after the Kafka
  tables of 006) got nothing from Kafka: 20 product events landed in ``raw.product_events`` and 0
  in ``rollups.product_events_1m``, and 20 after the Kafka table was re-attached. The schema asset
  therefore re-attaches every Kafka table after it applied DDL.
- librdkafka can leave a consumer without an assignment after a broker crash; the consumer-lag
  sensor re-attaches that topic's table (``platform_assets/ingest/heal.py``).
"""

from __future__ import annotations

from string import Template
from typing import Any

from platform_assets.core.sql import load, split_statements

KAFKA_DATABASE = "kafka_queue"


def kafka_tables(client: Any) -> list[str]:
    """The Kafka engine tables of ``kafka_queue`` on the server behind ``client``."""
    sql = "SELECT name FROM system.tables WHERE database = {db:String} AND engine = 'Kafka' ORDER BY name"
    return [row[0] for row in client.query(sql, parameters={"db": KAFKA_DATABASE}).result_rows]


def reattach(client: Any, table: str, cluster: str = "") -> None:
    """DETACH and ATTACH ``kafka_queue.<table>`` (``ON CLUSTER`` when ``cluster`` is given)."""
    on_cluster = f" ON CLUSTER '{cluster}'" if cluster else ""
    script = Template(load(__file__, "reattach_kafka_table.sql")).substitute(table=table, on_cluster=on_cluster)
    for statement in split_statements(script):
        try:
            client.command(statement)
        except Exception as exc:
            # This build answers ATTACH of a Kafka table with LOGICAL_ERROR "Shutdown was
            # called" although the table is attached and consumes (ARCHITECTURE.md).
            if "Shutdown was called" not in str(exc) or not _attached(client, table):
                raise


def _attached(client: Any, table: str) -> bool:
    sql = "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}"
    return bool(client.query(sql, parameters={"db": KAFKA_DATABASE, "t": table}).result_rows[0][0])
