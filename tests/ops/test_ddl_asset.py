"""The schema asset through Dagster against the real ClickHouse."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, Failure, materialize

from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.ops.checks import clickhouse_schema_in_sync
from platform_assets.ops.ddl import DDL_DIR
from platform_assets.synthetic.raw_columns import RAW_TABLE_COLUMNS

pytestmark = pytest.mark.e2e


def run(resources, ddl_dir, *, with_check=False, raise_on_error=True):
    config = {"ops": {"clickhouse__schema": {"config": {"ddl_dir": str(ddl_dir)}}}}
    assets = [kafka_topics, clickhouse_schema]
    if with_check:
        assets.append(clickhouse_schema_in_sync)
    return materialize(
        assets,
        resources=resources,
        run_config=config,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


@pytest.fixture
def resources(stack, clickhouse, kafka):
    return {"clickhouse": clickhouse, "kafka": kafka}


def metadata(result):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["clickhouse", "schema"]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_repo_ddl_creates_the_platform_databases(resources, clickhouse):
    result = run(resources, DDL_DIR, with_check=True)
    assert result.success
    with clickhouse.client() as ch:
        names = {r[0] for r in ch.query("SELECT name FROM system.databases").result_rows}
    assert {"platform_meta", "kafka_queue", "raw", "dead_letter", "staging", "marts"} <= names
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_second_run_changes_nothing_and_edits_are_refused(resources, clickhouse, tmp_path):
    ddl = tmp_path / "ddl"
    ddl.mkdir()
    db = f"t_ddl_{tmp_path.name[-8:].replace('-', '_')}".lower()
    (ddl / "001_db.sql").write_text(f"CREATE DATABASE IF NOT EXISTS {db};\n")
    (ddl / "002_table.sql").write_text(
        f"CREATE TABLE IF NOT EXISTS {db}.t (id UInt64, note String DEFAULT 'a;b') "
        "ENGINE = MergeTree ORDER BY id;\n"
        f"INSERT INTO {db}.t (id) SELECT number FROM numbers(3);\n"
    )
    first = metadata(run(resources, ddl))
    assert first["applied_now"] == ["001_db.sql", "002_table.sql"]

    with clickhouse.client() as ch:
        count = lambda: ch.query(f"SELECT count() FROM {db}.t").result_rows[0][0]  # noqa: E731
        assert count() == 3
        second = metadata(run(resources, ddl))
        assert second["applied_now"] == [] and second["already_applied"] == 2
        assert count() == 3  # the INSERT did not run twice
        rows = ch.query(
            "SELECT filename, checksum FROM platform_meta.schema_migrations FINAL "
            "WHERE filename IN ('001_db.sql', '002_table.sql') ORDER BY filename"
        ).result_rows
    assert [r[1] for r in rows] == [first["checksums"]["001_db.sql"], first["checksums"]["002_table.sql"]]

    # A new file is applied on its own.
    (ddl / "003_more.sql").write_text(f"CREATE TABLE IF NOT EXISTS {db}.u (x UInt8) ENGINE = Memory;\n")
    assert metadata(run(resources, ddl))["applied_now"] == ["003_more.sql"]

    # Editing an applied file fails the run and the check, naming the file.
    (ddl / "002_table.sql").write_text((ddl / "002_table.sql").read_text() + "-- edited\n")
    # Failure, not DagsterMaxRetriesExceededError: an edited file is not retried.
    with pytest.raises(Failure, match=r"002_table\.sql: applied sha256"):
        run(resources, ddl)
    failed = run(resources, ddl, with_check=True, raise_on_error=False)
    assert not failed.success


def test_failing_statement_names_file_and_statement(resources, tmp_path):
    ddl = tmp_path / "ddl"
    ddl.mkdir()
    shutil.copy(DDL_DIR / "001_databases.sql", ddl / "001_databases.sql")
    (ddl / "002_broken.sql").write_text(
        "CREATE TABLE IF NOT EXISTS raw.ok_table (x UInt8) ENGINE = Memory;\nCREATE TABLE nonsense here;\n"
    )
    with pytest.raises(Failure, match=r"002_broken\.sql, statement 2"):
        run(resources, ddl)


def test_synthetic_raw_column_lists_name_real_columns_in_table_order(resources, clickhouse):
    assert run(resources, DDL_DIR).success
    with clickhouse.client() as ch:
        for table, columns in RAW_TABLE_COLUMNS.items():
            database, name = table.split(".")
            real = [
                r[0]
                for r in ch.query(
                    "SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                    "ORDER BY position",
                    parameters={"d": database, "t": name},
                ).result_rows
            ]
            missing = [c for c in columns if c not in real]
            assert not missing, f"{table}: {missing} are not columns of the table"
            assert sorted(columns, key=real.index) == columns, f"{table}: list out of the table's column order"


def test_a_view_added_on_a_raw_table_gets_what_kafka_delivers(resources, clickhouse, kafka, tmp_path):
    """A Kafka table's consumers feed only the views that existed when they started: a view
    created later on a table they fill got nothing from Kafka (0 of 20 events before the fix).
    The schema asset re-attaches the Kafka tables after applying DDL (core/kafka_tables.py)."""
    assert run(resources, DDL_DIR).success
    ddl = tmp_path / "ddl"
    shutil.copytree(DDL_DIR, ddl)
    (ddl / "900_probe_view.sql").write_text(
        "CREATE TABLE IF NOT EXISTS raw.zz_probe_counts (workspace_id String, n UInt64) "
        "ENGINE = SummingMergeTree ORDER BY workspace_id;\n"
        "CREATE MATERIALIZED VIEW IF NOT EXISTS raw.zz_probe_mv TO raw.zz_probe_counts AS "
        "SELECT workspace_id, count() AS n FROM raw.product_events GROUP BY workspace_id;\n"
    )
    try:
        meta = metadata(run(resources, ddl))
        assert meta["applied_now"] == ["900_probe_view.sql"]
        assert "product_events" in meta["kafka_tables_reattached"]
        workspace = f"ws_probe_{uuid.uuid4().hex[:8]}"
        producer = kafka.producer()  # default batching, as the collector
        for _ in range(20):
            row = {
                "event_id": str(uuid.uuid4()),
                "event_type": "probe",
                "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "workspace_id": workspace,
            }
            producer.produce("product_events", value=json.dumps(row).encode())
        assert producer.flush(30) == 0
        sql = "SELECT sum(n) FROM raw.zz_probe_counts WHERE workspace_id = {w:String}"
        deadline = time.monotonic() + 60
        with clickhouse.client() as ch:
            counted = ch.query(sql, parameters={"w": workspace}).result_rows[0][0]
            while counted < 20 and time.monotonic() < deadline:
                time.sleep(0.3)
                counted = ch.query(sql, parameters={"w": workspace}).result_rows[0][0]
            raw = ch.query(
                "SELECT uniqExact(event_id) FROM raw.product_events WHERE workspace_id = {w:String}",
                parameters={"w": workspace},
            ).result_rows[0][0]
        assert raw == 20 and counted >= 20, (raw, counted)
    finally:
        with clickhouse.client() as ch:
            ch.command("DROP VIEW IF EXISTS raw.zz_probe_mv SYNC")
            ch.command("DROP TABLE IF EXISTS raw.zz_probe_counts SYNC")
