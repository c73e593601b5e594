"""Least privilege and tenancy on the real server (platform_assets/core/access.py, docs/security.md).

Each component user can do its job and nothing past it; every materialized view runs as
``ingest``; a tenant's reader sees only its workspaces and is refused with ClickHouse's quota
error past its quota while ingestion goes on and loses nothing. The session stack's tenants are
``TEST_TENANTS`` of tests/conftest.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import DagsterInstance, build_sensor_context

from platform_assets.core.resources import ClickHouseResource
from platform_assets.ingest.resources import IngestResource
from platform_assets.ingest.sensors import ingest_consumer_lag_sensor
from platform_assets.ops.ddl import DDL_DIR

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
WORKSPACES = {"tenant_ws_a": 12, "tenant_ws_b": 5, "tenant_ws_c": 7, "tenant_ws_other": 3}


def tenant(stack, name: str, clickhouse: ClickHouseResource) -> ClickHouseResource:
    return clickhouse.replaced(username=f"tenant_{name}", password=stack.env()[f"TENANT_{name.upper()}_PASSWORD"])


def refused(resource: ClickHouseResource, sql: str) -> str:
    with resource.client() as ch, pytest.raises(DatabaseError) as info:
        ch.command(sql)
    return str(info.value)


def product_event(workspace: str, tag: str) -> bytes:
    row = {
        "event_id": str(uuid.uuid4()),
        "event_type": f"access_{tag}",
        "occurred_at": f"{TODAY}T09:00:00Z",
        "workspace_id": workspace,
        "properties": {"path": "/"},
    }
    return json.dumps(row).encode()


def produce(kafka, values: list[bytes]) -> int:
    """Default batching, as the collector produces; returns the messages the broker acknowledged."""
    delivered = Counter()

    def on_delivery(err, msg):
        delivered["ok" if err is None else "error"] += 1

    producer = kafka.producer()
    for value in values:
        producer.produce("product_events", value=value, key=uuid.uuid4().bytes, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert delivered["error"] == 0
    return delivered["ok"]


def landed(clickhouse, tag: str, expected: int, timeout: float = 120.0) -> int:
    sql = f"SELECT uniqExact(event_id) FROM raw.product_events WHERE event_type = 'access_{tag}'"
    deadline = time.monotonic() + timeout
    with clickhouse.client() as ch:
        count = ch.query(sql).result_rows[0][0]
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            count = ch.query(sql).result_rows[0][0]
    return count


# ------------------------------------------------------------------------------ components


def test_every_view_runs_as_ingest(schema, clickhouse):
    with clickhouse.client() as ch:
        views = ch.query(
            "SELECT database || '.' || name, create_table_query LIKE '%DEFINER = ingest SQL SECURITY DEFINER%' "
            "FROM system.tables WHERE engine = 'MaterializedView' ORDER BY 1"
        ).result_rows
    created = sum(f.read_text().count("CREATE MATERIALIZED VIEW") for f in DDL_DIR.glob("*.sql"))
    assert len(views) == created == 28
    assert [name for name, as_ingest in views if not as_ingest] == []


def test_each_component_logs_in_as_itself_and_can_do_no_more(schema, clickhouse):
    for role in ("transform", "export", "monitor"):
        with clickhouse.as_role(role).client() as ch:
            assert ch.query("SELECT currentUser()").result_rows[0][0] == role
            assert ch.query("SELECT count() >= 0 FROM raw.product_events").result_rows[0][0] == 1
    monitor, transform, export = (clickhouse.as_role(r) for r in ("monitor", "transform", "export"))
    # Nobody but the admin changes the raw tables or the schema; only transform writes staging.
    for who in (monitor, transform, export):
        assert "ACCESS_DENIED" in refused(who, "INSERT INTO raw.product_events (event_id) VALUES ('x')")
        assert "ACCESS_DENIED" in refused(who, "CREATE TABLE raw.not_allowed (x UInt8) ENGINE = Memory")
        assert "ACCESS_DENIED" in refused(who, "DROP TABLE raw.product_events")
        # Reading a Kafka table would consume its messages: only the views' definer may.
        assert "ACCESS_DENIED" in refused(who, "SELECT * FROM kafka_queue.product_events LIMIT 1")
    for who in (monitor, export):
        assert "ACCESS_DENIED" in refused(who, "CREATE TABLE staging.not_allowed (x UInt8) ENGINE = Memory")
    assert "ACCESS_DENIED" in refused(export, "INSERT INTO ops.kafka_consumer_lag (topic) VALUES ('x')")
    assert "ACCESS_DENIED" in refused(transform, "SELECT count() FROM dead_letter.kafka_messages")
    # The lag sensor reads which partitions each consumer holds: monitor sees the consumers.
    with monitor.client() as ch:
        consumers = ch.query("SELECT count() FROM system.kafka_consumers WHERE database = 'kafka_queue'")
        assert consumers.result_rows[0][0] > 0
    name = f"staging.access_probe_{uuid.uuid4().hex[:8]}"
    with transform.client() as ch:
        ch.command(f"CREATE TABLE {name} (x UInt8) ENGINE = MergeTree ORDER BY x")
        ch.command(f"INSERT INTO {name} VALUES (1)")
        ch.command(f"DROP TABLE {name} SYNC")
    guess = clickhouse.replaced(username="ingest", password="guess")
    with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED"), guess.client() as ch:
        ch.query("SELECT 1")


def test_the_consumer_lag_sensor_queries_as_monitor(schema, kafka, clickhouse):
    """What the sensor sends shows up in system.query_log under the monitor user only."""
    sensor_context = build_sensor_context(
        sensor_name="ingest_consumer_lag",
        instance=DagsterInstance.ephemeral(),
        resources={"kafka": kafka, "clickhouse": clickhouse, "ingest": IngestResource()},
    )
    ingest_consumer_lag_sensor(sensor_context)
    with clickhouse.client() as ch:
        ch.command("SYSTEM FLUSH LOGS")
        users = ch.query(
            "SELECT groupUniqArray(user) FROM system.query_log WHERE type = 'QueryFinish' "
            "AND JSONExtractString(log_comment, 'sensor_name') = 'ingest_consumer_lag' "
            "AND event_time >= now() - INTERVAL 5 MINUTE"
        ).result_rows[0][0]
    assert users == ["monitor"], users


# --------------------------------------------------------------------------------- tenants


def test_a_tenant_reads_only_its_workspaces(schema, stack, kafka, clickhouse):
    tag = uuid.uuid4().hex[:8]
    values = [product_event(w, tag) for w, n in WORKSPACES.items() for _ in range(n)]
    assert produce(kafka, values) == len(values)
    assert landed(clickhouse, tag, len(values)) == len(values)
    sql = (
        "SELECT workspace_id, sum(events) FROM rollups.product_events_1m "
        f"WHERE event_type = 'access_{tag}' GROUP BY workspace_id ORDER BY workspace_id"
    )
    # The rollup view writes after the raw insert it fires on: wait until it has every event.
    deadline = time.monotonic() + 30
    with clickhouse.client() as ch:
        seen = dict(ch.query(sql).result_rows)
        while seen != WORKSPACES and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = dict(ch.query(sql).result_rows)
    assert seen == WORKSPACES, seen  # the admin sees every workspace
    acme = tenant(stack, "acme", clickhouse)
    with acme.client() as ch:
        assert dict(ch.query(sql).result_rows) == {"tenant_ws_a": 12, "tenant_ws_b": 5}
        assert ch.query("SELECT currentUser()").result_rows[0][0] == "tenant_acme"
    assert "ACCESS_DENIED" in refused(acme, "SELECT count() FROM raw.product_events")
    assert "ACCESS_DENIED" in refused(acme, "SELECT count() FROM dead_letter.kafka_messages")
    assert "ACCESS_DENIED" in refused(acme, "SELECT count() FROM ops.kafka_consumer_lag")
    insert = refused(
        acme, f"INSERT INTO rollups.product_events_1m (workspace_id, event_type) VALUES ('tenant_ws_a', 'access_{tag}')"
    )
    assert "ACCESS_DENIED" in insert or "READONLY" in insert, insert
    with clickhouse.client() as ch:
        assert dict(ch.query(sql).result_rows) == WORKSPACES  # nothing was written
    # The profile's bounds hold: a query cannot ask for more threads than the tenant has.
    assert "SETTING_CONSTRAINT_VIOLATION" in refused(acme, "SELECT 1 SETTINGS max_threads = 64")


def test_a_noisy_tenant_is_refused_past_its_quota_while_ingestion_goes_on(schema, stack, kafka, clickhouse):
    """`noisy` has 5 queries a minute: it hammers the rollups while 20,000 events are produced;
    its queries past the quota get QUOTA_EXCEEDED (code 201), and every event lands."""
    tag = uuid.uuid4().hex[:8]
    noisy = tenant(stack, "noisy", clickhouse)
    answers: Counter = Counter()
    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with noisy.client() as ch:
            while not stop.is_set():
                try:
                    ch.query("SELECT workspace_id, sum(events) FROM rollups.product_events_1m GROUP BY workspace_id")
                    answers["ok"] += 1
                except DatabaseError as exc:
                    answers["refused"] += 1
                    errors.append(str(exc))
                    time.sleep(0.05)

    thread = threading.Thread(target=hammer, daemon=True)
    started = time.time()
    thread.start()
    try:
        values = [product_event("tenant_ws_c", tag) for _ in range(20_000)]
        assert produce(kafka, values) == 20_000
        assert landed(clickhouse, tag, 20_000) == 20_000
    finally:
        stop.set()
        thread.join(30)
    # At most 5 answered in each minute the run touched (the quota's intervals start on the minute).
    minutes = int(time.time() // 60) - int(started // 60) + 1
    assert answers["refused"] > 0 and answers["ok"] <= 5 * minutes, (answers, minutes)
    assert all("QUOTA_EXCEEDED" in e and "Code: 201" in e and "tenant_noisy" in e for e in errors), errors[:3]
