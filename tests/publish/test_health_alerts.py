"""The health alert rules' query A on the session stack: one number per series (string columns are
labels); where a cause is cheap to inject, the condition is false before it and true after."""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from dagster import DagsterInstance, materialize

from platform_assets.core.resources import ClickHouseResource
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ingest.collector.config import CollectorConfig
from platform_assets.ingest.collector.serve import CollectorThread
from platform_assets.ingest.collector.sink import KafkaSink, Message, Unavailable
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.publish.alert_spec import AlertSpec
from platform_assets.publish.alerts_health import (
    DISK_USED_MAX,
    HEALTH_ALERTS,
    INACTIVE_PARTS_MAX,
    MUTATION_MAX_AGE_S,
    SLOW_QUERY_P95_MS,
)
from platform_assets.publish.resources import GrafanaResource

pytestmark = pytest.mark.integration

SPECS = {a.uid.removeprefix("platform-health-"): a for a in HEALTH_ALERTS}
PROBE_DB = "health_probe"


@pytest.fixture(scope="module")
def schema(stack, clickhouse, kafka):
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    with clickhouse.client() as ch:
        ch.command("SYSTEM FLUSH LOGS")  # system.query_log exists from its first flush


def series(clickhouse: ClickHouseResource, spec: AlertSpec) -> dict[tuple[str, ...], float]:
    """Query A: labels (the string columns) -> the number Grafana reduces (the last column)."""
    with clickhouse.client() as ch:
        rows = ch.query(spec.sql).result_rows
    out = {}
    for row in rows:
        *labels, value = row
        assert all(isinstance(v, str) for v in labels), row
        assert isinstance(value, int | float) and not isinstance(value, bool), row
        out[tuple(labels)] = value
    assert len(out) == len(rows), "one row per series"
    return out


def firing(values: dict[tuple[str, ...], float], spec: AlertSpec, threshold: float | None = None) -> set:
    """The series whose condition C holds (op against the threshold, the rule's or one passed in)."""
    limit = spec.threshold if threshold is None else threshold
    return {k for k, v in values.items() if (v > limit if spec.op == "gt" else v < limit)}


@pytest.mark.parametrize("spec", HEALTH_ALERTS, ids=lambda a: a.uid)
def test_every_health_rule_returns_a_number_per_series(schema, clickhouse, spec: AlertSpec) -> None:
    series(clickhouse, spec)  # asserts the shape; rows depend on the server's state


@pytest.fixture
def probe_table(schema, clickhouse) -> Iterator[str]:
    name = f"probe_{uuid.uuid4().hex[:8]}"
    with clickhouse.client() as ch:
        ch.command(f"CREATE DATABASE IF NOT EXISTS {PROBE_DB}")
        ch.command(f"CREATE TABLE {PROBE_DB}.{name} (id UInt32, v UInt32) ENGINE = MergeTree ORDER BY id")
    try:
        yield name
    finally:
        with clickhouse.client() as ch:
            ch.command(f"KILL MUTATION WHERE database = '{PROBE_DB}' AND table = '{name}' SYNC")
            ch.command(f"DROP TABLE IF EXISTS {PROBE_DB}.{name} SYNC")


def test_inactive_parts_rule_sees_parts_replaced_by_a_merge(clickhouse, probe_table) -> None:
    spec, key = SPECS["inactive-parts"], (PROBE_DB, probe_table)
    with clickhouse.client() as ch:
        for i in range(3):
            ch.command(f"INSERT INTO {PROBE_DB}.{probe_table} VALUES ({i}, 1)")
        assert key not in firing(series(clickhouse, spec), spec, threshold=0)
        ch.command(f"OPTIMIZE TABLE {PROBE_DB}.{probe_table} FINAL")  # 3 parts merged into 1: 3 inactive
    values = series(clickhouse, spec)
    assert values[key] == 3
    assert key in firing(values, spec, threshold=0) and key not in firing(values, spec)
    assert spec.threshold == INACTIVE_PARTS_MAX


def test_mutation_rule_sees_a_mutation_that_cannot_finish(clickhouse, probe_table) -> None:
    spec, key = SPECS["mutations-backlog"], (PROBE_DB, probe_table)
    with clickhouse.client() as ch:
        ch.command(f"INSERT INTO {PROBE_DB}.{probe_table} VALUES (1, 1)")
        assert key not in series(clickhouse, spec)
        # Fails on every part, every retry: stays in system.mutations with is_done = 0.
        ch.command(
            f"ALTER TABLE {PROBE_DB}.{probe_table} UPDATE v = throwIf(v = 1, 'probe') WHERE 1",
            settings={"mutations_sync": 0},  # asynchronous: the ALTER returns, the mutation stays queued
        )
    time.sleep(2.5)
    values = series(clickhouse, spec)
    assert 2 <= values[key] < 60
    assert key in firing(values, spec, threshold=1) and key not in firing(values, spec)
    assert spec.threshold == MUTATION_MAX_AGE_S


def test_disk_rule_is_the_share_of_the_disk_in_use(schema, clickhouse) -> None:
    spec = SPECS["disk-use"]
    values = series(clickhouse, spec)
    with clickhouse.client() as ch:
        disks = dict(ch.query("SELECT name, path FROM system.disks WHERE total_space > 0").result_rows)
    assert set(values) == {(d,) for d in disks}
    for (disk,), used in values.items():
        st = os.statvfs(disks[disk])  # the embedded server runs on this machine
        assert used == pytest.approx(1 - st.f_bavail / st.f_blocks, abs=0.02), disk
        assert ((disk,) in firing(values, spec)) == (used > DISK_USED_MAX)


def test_slow_query_rule_fires_on_slow_queries_of_a_user(schema, clickhouse, stack) -> None:
    """The grafana user's queries of the last 10 minutes, then enough SELECT sleep(3) to lift its p95
    above a threshold of 2.5 s (the rule's is 5 s)."""
    spec, env = SPECS["slow-queries"], stack.env()
    reader = GrafanaResource(
        clickhouse_user=env["GRAFANA_CLICKHOUSE_USER"], clickhouse_password=env["GRAFANA_CLICKHOUSE_PASSWORD"]
    ).reader(clickhouse)
    key = (env["GRAFANA_CLICKHOUSE_USER"], "Select")
    with clickhouse.client() as ch:
        ch.command("SYSTEM FLUSH LOGS")
        (before,) = ch.query(
            "SELECT count() FROM system.query_log WHERE event_time >= now() - INTERVAL 10 MINUTE "
            "AND type = 'QueryFinish' AND user = {u:String} AND query_kind = 'Select'",
            parameters={"u": key[0]},
        ).result_rows[0]
    assert key not in firing(series(clickhouse, spec), spec, threshold=2500)
    slow = max(3, math.ceil((before + 1) * 0.1))  # 10% of its queries: the p95 is one of them

    def sleep(_: int) -> None:
        with reader.client() as ch:
            ch.query("SELECT sleep(3)")

    with ThreadPoolExecutor(max_workers=min(slow, 16)) as pool:
        list(pool.map(sleep, range(slow)))
    with clickhouse.client() as ch:
        ch.command("SYSTEM FLUSH LOGS")
    values = series(clickhouse, spec)
    assert values[key] >= 2500, (values.get(key), before, slow)
    assert key in firing(values, spec, threshold=2500)
    assert spec.threshold == SLOW_QUERY_P95_MS


def test_kafka_consumer_exception_rule_counts_recent_exceptions(schema, clickhouse) -> None:
    spec = SPECS["kafka-consumer-exceptions"]
    values = series(clickhouse, spec)
    with clickhouse.client() as ch:
        expected = dict(
            ((db, table), int(n))
            for db, table, n in ch.query(
                "SELECT database, table, countIf(t >= now() - INTERVAL 5 MINUTE) FROM system.kafka_consumers "
                "LEFT ARRAY JOIN exceptions.time AS t GROUP BY database, table"
            ).result_rows
        )
    assert values == pytest.approx(expected, abs=1)  # an exception may arrive between the two reads
    assert firing(values, spec) == {k for k, v in values.items() if v > 0}


class RefusingSink(KafkaSink):
    """Kafka does not take the requests' messages (as while the broker is down); the worker's
    producer itself works, so its counter reports reach ops.collector_stats."""

    async def send(self, messages: Sequence[Message]) -> None:
        raise Unavailable("producer queue full")


def test_collector_refusal_rule_fires_for_the_host_that_refused(schema, clickhouse, kafka) -> None:
    spec, host = SPECS["collector-refusals"], socket.gethostname()
    assert (host,) not in firing(series(clickhouse, spec), spec)
    cfg = CollectorConfig(
        bootstrap_servers=kafka.bootstrap_servers,
        hmac_keys={"k1": b"0123456789abcdef0123"},
        hash_key=b"hash-key-0123456789",
        stats_interval_s=1.0,
    )
    since = datetime.now(UTC)
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "refused", "startTimeUnixNano": "1"}
    body: dict[str, Any] = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    with CollectorThread(cfg, sink=RefusingSink(cfg)) as collector:
        codes = [requests.post(f"{collector.url}/v1/traces", json=body, timeout=10).status_code for _ in range(3)]
    assert codes == [503] * 3
    deadline = time.monotonic() + 90
    with clickhouse.client() as ch:
        while True:
            (landed,) = ch.query(
                "SELECT sum(delta) FROM ops.collector_stats WHERE counter = 'unavailable_responses' "
                "AND host = {h:String} AND pid = {p:UInt32} AND reported_at >= {since:DateTime64(3, 'UTC')}",
                parameters={"h": host, "p": os.getpid(), "since": since.replace(tzinfo=None)},
            ).result_rows[0]
            if landed == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert landed == 3
    values = series(clickhouse, spec)
    assert values[(host,)] >= 3 and (host,) in firing(values, spec)
