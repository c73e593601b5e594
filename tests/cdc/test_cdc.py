"""CDC end to end on real Postgres and ClickHouse: replication, lag, drift, restarts, bad sources."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid

import psycopg
import pytest
from dagster import AssetSelection, DagsterInstance, Failure, build_sensor_context, materialize

from platform_assets.cdc import monitor, replica, source
from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication, table_key
from platform_assets.cdc.checks import build_table_checks
from platform_assets.cdc.jobs import cdc_repair_drift
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.cdc.sensors import cdc_replication_lag_sensor, cdc_schema_drift_sensor
from platform_assets.core.resources import PostgresResource
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.config import StackConfig, StackError
from platform_assets.stack.scratch import free_ports, new_stack_dir
from platform_assets.stack.servers import PostgresServer
from platform_assets.synthetic.app import Workload

pytestmark = pytest.mark.e2e

TABLES = configured_tables()


@pytest.fixture(scope="module")
def res(stack, clickhouse, postgres, kafka, cdc):
    return {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def replicated(res):
    """The CDC assets materialized once for the module, as a user would from the UI."""
    result = materialize(
        [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(TABLES)],
        resources=res,
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def wait_caught_up(postgres, clickhouse, cdc, timeout=60.0) -> float:
    """Write a heartbeat and wait until ClickHouse shows it; returns the seconds it took."""
    return monitor.wait_caught_up(postgres, clickhouse, cdc.replica_database, timeout)


def counts(postgres, clickhouse, cdc, tables=TABLES):
    with postgres.connect() as conn:
        src = source.source_counts(conn, tables)
    with clickhouse.client() as ch:
        rep = replica.live_counts(ch, cdc.replica_database, tables)
    return src, rep


def test_replica_assets_create_every_configured_table(replicated, clickhouse, cdc):
    keys = {e.asset_key for e in replicated.get_asset_materialization_events()}
    assert {table_key(t) for t in TABLES} <= keys
    with clickhouse.client() as ch:
        engine = ch.query(
            "SELECT engine FROM system.databases WHERE name = {db:String}", parameters={"db": cdc.replica_database}
        ).result_rows
        assert engine == [("MaterializedPostgreSQL",)]
        assert set(TABLES) <= set(replica.replica_tables(ch, cdc.replica_database))


def test_insert_update_delete_replicate(replicated, postgres, clickhouse, cdc):
    with postgres.connect(autocommit=True) as conn:
        record = Workload(conn, seed=11, rate=400).run(duration=3, rate=400)
        paid, refunded = conn.execute(
            "SELECT sum(amount_cents), sum(amount_cents) FILTER (WHERE status = 'refunded') FROM orders"
        ).fetchone()
        some_user, country = conn.execute(
            "SELECT user_id, country FROM users WHERE updated_at > created_at ORDER BY user_id DESC LIMIT 1"
        ).fetchone()
    assert record.deleted["events"] > 0 and record.updated["orders"] > 0 and record.updated["users"] > 0
    wait_caught_up(postgres, clickhouse, cdc)
    src, rep = counts(postgres, clickhouse, cdc)
    assert rep == src, f"replica {rep} != source {src}"
    with clickhouse.client() as ch:
        db = cdc.replica_database
        got = ch.query(
            f"SELECT sum(amount_cents), sumIf(amount_cents, status = 'refunded') FROM {db}.orders FINAL WHERE _sign = 1"
        ).result_rows[0]
        assert got == (paid, refunded)
        # An updated row reads as its latest version.
        assert ch.query(
            f"SELECT country FROM {db}.users FINAL WHERE _sign = 1 AND user_id = {some_user}"
        ).result_rows == [(country,)]
        # Deleted rows are gone from live reads but still present as _sign = -1 without FINAL.
        deleted = ch.query(f"SELECT count() FROM {db}.events FINAL WHERE _sign = -1").result_rows[0][0]
        assert deleted >= record.deleted["events"]


def test_lag_is_near_zero_at_rest(replicated, res, postgres, clickhouse, cdc, instance):
    wait_caught_up(postgres, clickhouse, cdc)
    context = build_sensor_context(resources=res, instance=instance)
    result = cdc_replication_lag_sensor(context)
    cursor = json.loads(result.cursor)
    (observation,) = [e for e in result.asset_events if type(e).__name__ == "AssetObservation"]
    assert "lag_seconds" in observation.metadata, (result.skip_reason.skip_message, observation.metadata)
    lag_s = observation.metadata["lag_seconds"].value
    assert lag_s is not None and lag_s <= 1.0, result.skip_reason.skip_message
    assert result.skip_reason.skip_message.startswith("OK: slot lag "), result.skip_reason.skip_message
    (check,) = [e for e in result.asset_events if type(e).__name__ == "AssetCheckEvaluation"]
    assert check.passed and cursor["flagged"] is False


def test_stopped_clickhouse_lags_is_flagged_then_catches_up(
    replicated, stack, res, postgres, clickhouse, cdc, instance
):
    tight = CdcResource(replication_password=cdc.replication_password, max_lag_bytes=1, max_lag_seconds=5)
    sensor_res = {**res, "cdc": tight}
    wait_caught_up(postgres, clickhouse, cdc)
    stack.servers["clickhouse"].down()
    try:
        with postgres.connect(autocommit=True) as conn:
            record = Workload(conn, seed=12, rate=1000).run(duration=2, rate=1000)
            source.write_heartbeat(conn)
        cursor = None
        reasons = []
        for _ in range(4):  # the first tick sets the LSN baseline, then three ticks without progress
            result = cdc_replication_lag_sensor(
                build_sensor_context(resources=sensor_res, cursor=cursor, instance=instance)
            )
            cursor = result.cursor
            reasons.append(result.skip_reason.skip_message)
        state = json.loads(cursor)
        assert state["flagged"] is True and state["stalled_ticks"] == 3
        assert reasons[0].startswith("FLAGGED: ") and "clickhouse unreachable" in reasons[0]
        assert "slot lag" in reasons[0] and "bytes > 1" in reasons[0]
        assert "slot inactive" in reasons[-1]
    finally:
        stack.servers["clickhouse"].up()
    # Nothing written while ClickHouse was down is lost.
    wait_caught_up(postgres, clickhouse, cdc, timeout=120)
    src, rep = counts(postgres, clickhouse, cdc)
    assert rep == src and record.changes == 2000
    # Caught up again (judged with the default thresholds: at rest a few hundred bytes of WAL from
    # other activity always wait): the verdict flips back and a passing check result is recorded.
    result = cdc_replication_lag_sensor(build_sensor_context(resources=res, cursor=cursor, instance=instance))
    assert json.loads(result.cursor)["flagged"] is False, result.skip_reason.skip_message
    assert any(type(e).__name__ == "AssetCheckEvaluation" and e.passed for e in result.asset_events)


def test_new_column_is_drift_repaired_by_the_job(replicated, res, postgres, clickhouse, cdc, instance):
    checks = build_table_checks(TABLES)
    selection = AssetSelection.checks(checks)

    def run_checks():
        r = materialize(
            [build_replica_asset(TABLES), checks],
            resources=res,
            selection=selection,
            instance=DagsterInstance.ephemeral(),
        )
        return {(e.asset_key.path[-1], e.check_name): e for e in r.get_asset_check_evaluations()}

    with postgres.connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS referrer text")
        conn.execute(
            "INSERT INTO users (user_id, email, name, country, referrer) "
            "SELECT g, 'drift' || g || '@example.com', 'Drift', 'US', 'ads' FROM generate_series(900001, 900050) g"
        )
    time.sleep(1.5)
    evaluations = run_checks()
    drift = evaluations[("users", "schema_drift")]
    assert not drift.passed
    assert "users: column(s) ['referrer'] on the source only" in drift.description
    assert evaluations[("orders", "schema_drift")].passed

    # The drift sensor asks for the repair of exactly that table, once per drift.
    sensed = cdc_schema_drift_sensor(build_sensor_context(resources=res, instance=instance))
    (request,) = sensed.run_requests
    assert request.run_config["ops"]["repair_drifted_tables"]["config"]["tables"] == ["users"]
    again = cdc_schema_drift_sensor(build_sensor_context(resources=res, instance=instance, cursor=sensed.cursor))
    assert not again.run_requests and "repair already requested" in again.skip_reason.skip_message

    result = cdc_repair_drift.execute_in_process(
        resources=res, instance=DagsterInstance.ephemeral(), run_config=request.run_config
    )
    assert result.success
    (repaired,) = [m for m in result.asset_materializations_for_node("repair_drifted_tables")]
    assert repaired.asset_key == table_key("users")
    assert repaired.metadata["drift_before"].value == "users: column(s) ['referrer'] on the source only"

    # Replication resumes: new rows, including the new column, arrive.
    with postgres.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (user_id, email, name, country, referrer) "
            "VALUES (900100, 'after@example.com', 'After', 'DE', 'partner')"
        )
    wait_caught_up(postgres, clickhouse, cdc)
    src, rep = counts(postgres, clickhouse, cdc)
    assert rep == src
    with clickhouse.client() as ch:
        assert ch.query(
            f"SELECT referrer FROM {cdc.replica_database}.users FINAL WHERE user_id = 900100"
        ).result_rows == [("partner",)]
    evaluations = run_checks()
    assert evaluations[("users", "schema_drift")].passed and evaluations[("users", "row_parity")].passed
    assert cdc_schema_drift_sensor(build_sensor_context(resources=res, instance=instance)).skip_reason.skip_message == (
        f"no drift in {len(TABLES)} tables"
    )


def test_table_added_to_configuration_is_attached(replicated, res, postgres, clickhouse, cdc, monkeypatch):
    with postgres.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS coupons (code text PRIMARY KEY, percent int NOT NULL)")
        conn.execute("INSERT INTO coupons VALUES ('A', 10), ('B', 20) ON CONFLICT DO NOTHING")
    monkeypatch.setenv("CDC_TABLES", "users,orders,subscriptions,events,coupons")
    tables = configured_tables()
    result = materialize(
        [source_replication, build_replica_asset(tables)], resources=res, instance=DagsterInstance.ephemeral()
    )
    db_event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "clickhouse/pg_repl"
    )
    meta = db_event.materialization.metadata
    assert meta["created_now"].value is False
    assert meta["attached_now"].value == ["coupons"]
    with clickhouse.client() as ch:
        assert replica.live_count(ch, cdc.replica_database, "coupons") == 2


def test_table_without_primary_key_is_refused_by_name(replicated, res, postgres, monkeypatch):
    with postgres.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS audit_log (happened_at timestamptz, note text)")
    monkeypatch.setenv("CDC_TABLES", "users,audit_log")
    with pytest.raises(Failure) as err:  # Failure, not max retries: a source set up wrong is not retried
        materialize([source_replication], resources=res, instance=DagsterInstance.ephemeral())
    message = str(err.value)
    assert "audit_log" in message and "users" not in message.split("Fix:")[0]
    assert "ALTER TABLE audit_log ADD PRIMARY KEY" in message and "REPLICA IDENTITY FULL" in message


def test_source_with_wrong_wal_level_names_the_fix(cdc):
    root = new_stack_dir("platform-test-wal-")
    server = PostgresServer(StackConfig(root=root, ports=free_ports()))
    try:
        server.up()
        env = server.env()
        pg = PostgresResource(
            host=env["POSTGRES_HOST"],
            port=int(env["POSTGRES_PORT"]),
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            dbname=env["POSTGRES_DB"],
        )
        with pg.connect(autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET wal_level = replica")
        server.down()
        server.up()
        with pytest.raises(Failure) as err:
            materialize([source_replication], resources={"postgres": pg, "cdc": cdc})
        assert "wal_level is 'replica', CDC needs 'logical'" in str(err.value)
        assert "ALTER SYSTEM SET wal_level = logical" in str(err.value)
    finally:
        with contextlib.suppress(StackError):
            server.down()
        shutil.rmtree(root, ignore_errors=True)


def test_simulator_is_deterministic_for_a_seed(postgres):
    admin = postgres.conninfo()
    names = [f"sim_{uuid.uuid4().hex[:6]}" for _ in range(2)]
    snapshots = []
    with psycopg.connect(**{**admin, "dbname": "postgres"}, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        for name in names:
            with psycopg.connect(**{**admin, "dbname": name}, autocommit=True) as conn:
                source.migrate(conn)
                record = Workload(conn, seed=5, rate=5000).run(duration=1, rate=5000, max_changes=400)
                snapshots.append(
                    (
                        record.to_json()["operations"],
                        conn.execute("SELECT user_id, email, country FROM users ORDER BY 1").fetchall(),
                        conn.execute("SELECT order_id, amount_cents, status FROM orders ORDER BY 1").fetchall(),
                        conn.execute("SELECT event_id, event_name, properties FROM events ORDER BY 1").fetchall(),
                        conn.execute("SELECT subscription_id, plan, status FROM subscriptions ORDER BY 1").fetchall(),
                    )
                )
    finally:
        with psycopg.connect(**{**admin, "dbname": "postgres"}, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert snapshots[0] == snapshots[1]
    assert sum(snapshots[0][0].values()) == 400


def test_unreachable_source_is_reported_not_a_crash(replicated, res, cdc, instance):
    dead = PostgresResource(host="127.0.0.1", port=free_ports()["postgres"], user="x", password="x", dbname="x")
    result = cdc_replication_lag_sensor(build_sensor_context(resources={**res, "postgres": dead}, instance=instance))
    message = result.skip_reason.skip_message
    assert message.startswith("FLAGGED: source unreachable: connection failed"), message
    (check,) = [e for e in result.asset_events if type(e).__name__ == "AssetCheckEvaluation"]
    assert not check.passed
