"""Restarting ClickHouse's consumers of a topic whose partitions none of them holds.

librdkafka can leave a consumer group member without an assignment after the broker crashed
(observed in ``tests/faults/test_fault_kafka_broker.py``: all six consumers of ``otlp_spans``
held nothing while 2,710 spans waited, after a kill -9 and a 22 s restart of the broker).
Nothing in the consumer recovers from it; recreating the consumers does. The consumer-lag sensor
calls ``restart_consumers`` for such a topic (``IngestResource.restart_unheld_consumers``).
"""

from __future__ import annotations

from typing import Any

from platform_assets.core.kafka_tables import reattach
from platform_assets.core.resources import ClickHouseResource
from platform_assets.ingest.topics import CONSUMED


def restart_consumers(clickhouse: ClickHouseResource, table: str, context: Any = None) -> int:
    """DETACH and ATTACH ``kafka_queue.<table>`` on every node, as the admin; returns the nodes."""
    if table not in {t.name for t in CONSUMED}:
        raise ValueError(f"{table!r} is not a Kafka table of kafka_queue (ingest/topics.py)")
    cluster = clickhouse.cluster if clickhouse.cluster and not clickhouse.cluster_nodes else ""
    nodes = clickhouse.nodes()
    for node in nodes:
        with node.client(context) as client:
            reattach(client, table, cluster)
    return len(nodes)
