"""Reads consumer lag: broker watermarks, the ClickHouse group's committed offsets, and
``system.kafka_consumers`` (last exception, last poll, rebalances); records each observation in
``ops.kafka_consumer_lag`` (clickhouse_ddl/011), the lag's history."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from platform_assets.core.access import MONITOR
from platform_assets.core.resources import ClickHouseResource, KafkaResource
from platform_assets.core.sql import load
from platform_assets.ingest.lag import PartitionLag, TopicLag

TIMEOUT_S = 10
# The group coordinator answers these while it moves or loads __consumer_offsets (a broker that
# just started, a leader change): the read is retried, not reported as lag unknown.
COORDINATOR_BUSY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def group_for(topic: str) -> str:
    """The consumer group of the Kafka-engine table for ``topic`` (clickhouse_ddl/004)."""
    return f"clickhouse_{topic}"


def broker_lag(kafka: KafkaResource, topic: str) -> TopicLag:
    """High watermark minus committed offset per partition. Reading committed offsets with the
    group's id does not join the group, so ClickHouse's consumers are not disturbed."""
    group = group_for(topic)
    consumer: Consumer = kafka.consumer(group)
    try:
        meta = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return TopicLag(topic, group, [], error="topic not found on the broker")
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = committed_offsets(consumer, tps)
        parts = []
        for tp, done in zip(tps, committed, strict=True):
            low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S, cached=False)
            parts.append(PartitionLag(tp.partition, high, done.offset if done.offset >= 0 else None, low))
        return TopicLag(topic, group, parts)
    except KafkaException as exc:
        return TopicLag(topic, group, [], error=f"broker error: {exc}")
    finally:
        consumer.close()


def committed_offsets(consumer: Consumer, tps: list[TopicPartition]) -> list[TopicPartition]:
    """The group's committed offsets; a busy coordinator is asked again until TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return consumer.committed(tps, timeout=TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() not in COORDINATOR_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def clickhouse_consumers(clickhouse: ClickHouseResource, context: Any = None) -> dict[str, dict[str, Any]]:
    """Per Kafka-engine table in ``kafka_queue``: last exception, last poll, rebalances, and the
    partitions its consumers hold."""
    with clickhouse.as_role(MONITOR).client(context) as client:
        rows = client.query(
            "SELECT table, max(last_poll_time), max(last_commit_time), sum(num_messages_read), "
            "sum(num_rebalance_revocations), argMax(exceptions.text, last_poll_time), "
            "arraySort(arrayFlatten(groupArray(assignments.partition_id))) "
            "FROM system.kafka_consumers WHERE database = 'kafka_queue' GROUP BY table"
        ).result_rows
    out = {}
    for table, last_poll, last_commit, read, revocations, exceptions, assigned in rows:
        out[table] = {
            "last_poll_time": str(last_poll),
            "last_commit_time": str(last_commit),
            "messages_read": int(read),
            "rebalance_revocations": int(revocations),
            "last_exception": exceptions[-1] if exceptions else "",
            "assigned_partitions": [int(p) for p in assigned],
        }
    return out


def read_lag(
    kafka: KafkaResource, clickhouse: ClickHouseResource, topics: list[str], context: Any = None
) -> list[TopicLag]:
    try:
        consumers = clickhouse_consumers(clickhouse, context)
        ch_error = None
    except Exception as exc:  # noqa: BLE001 - reported in the figures, not a crash
        consumers, ch_error = {}, f"clickhouse unreachable: {str(exc).splitlines()[0][:200]}"
    out = []
    for topic in topics:
        lag = broker_lag(kafka, topic)
        consumer = consumers.get(topic, {})
        # A consumer that has not registered yet is only a problem once messages wait for it.
        missing = None if consumer or lag.total == 0 else "no ClickHouse consumer for this topic"
        error = lag.error or ch_error or missing
        out.append(TopicLag(lag.topic, lag.group, lag.partitions, consumer, error))
    return out


def lag_rows(lags: list[TopicLag], observed_at: datetime) -> list[dict[str, Any]]:
    """One ``ops.kafka_consumer_lag`` row per topic and partition (committed -1: nothing committed)."""
    at = observed_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return [
        {
            "observed_at": at,
            "topic": lag.topic,
            "consumer_group": lag.group,
            "partition": p.partition,
            "high_watermark": p.high_watermark,
            "committed": -1 if p.committed is None else p.committed,
            "lag": p.lag,
        }
        for lag in lags
        for p in lag.partitions
    ]


def record_lag(clickhouse: ClickHouseResource, lags: list[TopicLag], observed_at: datetime, context: Any = None) -> int:
    """Every partition's observation of one tick into ``ops.kafka_consumer_lag``, in one INSERT;
    returns the rows written (0 and no query when no topic has partitions). ``observed_at`` in UTC."""
    rows = lag_rows(lags, observed_at)
    if rows:
        text = "\n".join(json.dumps(r) for r in rows)
        with clickhouse.as_role(MONITOR).client(context) as client:
            client.command(load(__file__, "record_consumer_lag.sql"), parameters={"rows": text})
    return len(rows)


def group_members(kafka: KafkaResource, topic: str) -> dict[str, Any]:
    """The broker's view of the ClickHouse group of ``topic``: its state and, per member, the
    client id and the partitions the group coordinator gave it. Tells a consumer that holds no
    partition because another member of the group holds them from one that never joined."""
    group = group_for(topic)
    admin = kafka.admin()  # held until the answer: a collected client never completes its futures
    try:
        (future,) = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S).values()
        described = future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        return {"group": group, "error": f"broker error: {exc}"}
    members = [
        {
            "member_id": m.member_id,
            "client_id": m.client_id,
            "host": m.host,
            "partitions": sorted(
                (tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])
            ),
        }
        for m in described.members
    ]
    return {"group": group, "state": str(described.state), "members": members}


def consumer_rows(clickhouse: ClickHouseResource, table: str, context: Any = None) -> list[dict[str, Any]]:
    """``system.kafka_consumers`` as it stands for one Kafka table of ``kafka_queue``: per consumer
    its member id, partitions, last poll, rebalances and last exception."""
    with clickhouse.as_role(MONITOR).client(context) as client:
        result = client.query(
            "SELECT consumer_id, assignments.partition_id, last_poll_time, last_rebalance_time, "
            "num_rebalance_assignments, num_rebalance_revocations, num_messages_read, is_currently_used, "
            "last_used, exceptions.text, dependencies, missing_dependencies "
            "FROM system.kafka_consumers WHERE database = 'kafka_queue' AND table = {t:String}",
            parameters={"t": table},
        )
    return [
        dict(zip(result.column_names, [str(v) if isinstance(v, datetime) else v for v in row], strict=True))
        for row in result.result_rows
    ]
