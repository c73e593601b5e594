"""Restarting ClickHouse's consumers of a topic whose partitions none of them holds.

librdkafka can leave a consumer group member without an assignment after the broker crashed
(observed in ``tests/faults/test_fault_kafka_broker.py``: all six consumers of ``otlp_spans``
held nothing while 2,710 spans waited, after a kill -9 and a 22 s restart of the broker).
Nothing in the consumer recovers from it; recreating the consumers does. The consumer-lag sensor
calls ``restart_consumers`` for such a topic (``IngestResource.restart_unheld_consumers``).
"""

from __future__ import annotations

from string import Template
from typing import Any

from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.sql import load, split_statements
from platform_assets.ingest.topics import CONSUMED


def restart_consumers(clickhouse: ClickHouseResource, table: str, context: Any = None) -> int:
    """DETACH and ATTACH ``kafka_queue.<table>`` on every node; returns the nodes restarted."""
    if table not in {t.name for t in CONSUMED}:
        raise ValueError(f"{table!r} is not a Kafka table of kafka_queue (ingest/topics.py)")
    on_cluster = f" ON CLUSTER '{clickhouse.cluster}'" if clickhouse.cluster and not clickhouse.cluster_nodes else ""
    script = Template(load(__file__, "restart_consumers.sql")).substitute(table=table, on_cluster=on_cluster)
    nodes = clickhouse.nodes()
    for node in nodes:
        with node.client(context) as client:
            for statement in split_statements(script):
                try:
                    client.command(statement)
                except Exception as exc:
                    # This build answers ATTACH of a Kafka table with LOGICAL_ERROR "Shutdown was
                    # called" although the table is attached and consumes (ARCHITECTURE.md).
                    if "Shutdown was called" not in str(exc) or not _attached(client, table):
                        raise
    return len(nodes)


def _attached(client: Any, table: str) -> bool:
    sql = "SELECT count() FROM system.tables WHERE database = 'kafka_queue' AND name = {t:String}"
    return bool(client.query(sql, parameters={"t": table}).result_rows[0][0])
