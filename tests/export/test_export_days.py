"""Daily Parquet exports on the real servers of the session stack, to S3 (moto) and to a
local directory: what ClickHouse wrote is readable by pyarrow and by ClickHouse, the manifest
holds the source's rows and the objects' SHA-256, a re-run replaces the day, and the check
fails on a tampered object.

Days of their own (80..77 days ago, inside the raw tables' 90-day TTL; other modules use
later days): D0 is read by every test, D1 and D2 are changed by one target's test each.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, Definitions, materialize

from platform_assets.demo.export import export_summary
from platform_assets.export.assets import EXPORT_ASSETS
from platform_assets.export.checks import EXPORT_CHECKS
from platform_assets.export.manifest import Manifest
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import ExportTable, table
from platform_assets.export.target import MANIFEST_NAME, Target
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
D0, D1, D2, EMPTY = (TODAY - timedelta(days=n) for n in (80, 79, 78, 77))
MUTATED_DAY = {"local": D1, "s3": D2}
ROWS_PER_OBJECT = 1000  # small, so D0's agent events split into several objects
AGENT_ROWS = {D0: 2600, D1: 900, D2: 900}
RAW = [table("raw.agent_events"), table("raw.product_events"), table("raw.spans")]


@pytest.fixture(scope="module")
def seeded(stack, clickhouse, kafka):
    """Schema in place; agent events on D0..D2, product events and spans on D0."""
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    with clickhouse.client() as ch:
        for day, n in AGENT_ROWS.items():
            ch.command(
                "INSERT INTO raw.agent_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, "
                "model, provider, input_tokens, output_tokens, latency_ms, success, cost_usd, context) "
                "SELECT generateUUIDv4(), 'llm_call', toDateTime64({day:Date}, 3, 'UTC') + number * 30, "
                "concat('ws_exp_', toString(number % 3)), concat('s', toString(number % 40)), "
                "lower(hex(MD5(toString(number % 70)))), 'gpt-4o', 'openai', 100 + number % 900, 10 + number % 90, "
                '50 + number % 2000, number % 17 != 0, (number % 1000) / 1e5, \'{"agent_name": "exp"}\' '
                f"FROM numbers({n})",
                parameters={"day": day},
            )
        ch.command(
            "INSERT INTO raw.product_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, "
            "properties) SELECT generateUUIDv4(), 'page_view', toDateTime64({day:Date}, 3, 'UTC') + number * 60, "
            "'ws_exp_0', 's', 'u', '{\"path\": \"/\"}' FROM numbers(700)",
            parameters={"day": D0},
        )
        ch.command(
            "INSERT INTO raw.spans (trace_id, span_id, tenant, service, operation, start_time, end_time, duration_ms, "
            "attributes) SELECT lower(hex(MD5(toString(number)))), lower(hex(substring(MD5(toString(number)), 1, 8))), "
            "'ws_exp_0', 'agent', 'chat', toDateTime64({day:Date}, 3, 'UTC') + number, "
            "toDateTime64({day:Date}, 3, 'UTC') + number + 1, 1000, map('gen_ai.operation.name', 'chat') "
            "FROM numbers(400)",
            parameters={"day": D0},
        )
    return clickhouse


@pytest.fixture(scope="module", params=["local", "s3"])
def target_name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def export(target_name, tmp_path_factory) -> ExportResource:
    return ExportResource(
        target=target_name,
        prefix=f"exports-test-{uuid.uuid4().hex[:8]}",  # own keys on the session's bucket
        local_dir=str(tmp_path_factory.mktemp("exports")),
        rows_per_object=ROWS_PER_OBJECT,
    )


@pytest.fixture(scope="module")
def target(export, s3) -> Target:
    return export.make_target(s3)


def asset_for(t: ExportTable):
    return next(a for a in EXPORT_ASSETS if a.key == t.asset_key)


def check_for(t: ExportTable):
    return next(c for c in EXPORT_CHECKS if next(iter(c.check_keys)).asset_key == t.asset_key)


def run(tables: list[ExportTable], day: date, clickhouse, s3, export, checks_only: bool = False):
    """Materializes the exports of ``day`` with their checks, or (checks_only) runs only the checks."""
    resources = {"clickhouse": clickhouse, "s3": s3, "export": export}
    defs = [asset_for(t) for t in tables] + [check_for(t) for t in tables]
    if not checks_only:
        return materialize(
            defs,
            partition_key=day.isoformat(),
            resources=resources,
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    assets, checks = defs[: len(tables)], defs[len(tables) :]
    definitions = Definitions(assets=assets, asset_checks=checks, resources=resources)
    check_keys = {k for c in checks for k in c.check_keys}
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=check_keys
    )  # a check-only run of one day, as the UI's "Execute" on a check starts it
    instance = DagsterInstance.ephemeral()
    return job.execute_in_process(partition_key=day.isoformat(), instance=instance, raise_on_error=False)


def source_rows(clickhouse, t: ExportTable, day: date) -> int:
    with clickhouse.client() as ch:
        sql = f"SELECT count() FROM {t.qualified} WHERE {t.day_expr} = {{day:Date}}"
        return int(ch.query(sql, parameters={"day": day}).result_rows[0][0])


def table_columns(clickhouse, t: ExportTable) -> list[tuple[str, str]]:
    with clickhouse.client() as ch:
        rows = ch.query(f"DESCRIBE TABLE {t.qualified}").result_rows
    return [(r[0], r[1]) for r in rows]


def manifest_of(target: Target, export: ExportResource, t: ExportTable, day: date) -> Manifest:
    return Manifest.from_json(target.read(export.day_prefix(t, day) + MANIFEST_NAME))


def data_objects(target: Target, prefix: str) -> dict[str, int]:
    return {o.key[len(prefix) :]: o.size for o in target.list_objects(prefix) if not o.key.endswith(MANIFEST_NAME)}


def checks_by_asset(result) -> dict[str, object]:
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_export_writes_readable_parquet_with_a_true_manifest(seeded, clickhouse, s3, export, target):
    result = run(RAW, D0, clickhouse, s3, export)
    assert result.success
    checks = checks_by_asset(result)
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
    assert len(checks) == 3
    md = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    for t in RAW:
        expected = source_rows(clickhouse, t, D0)
        assert expected > 0
        prefix = export.day_prefix(t, D0)
        m = manifest_of(target, export, t, D0)
        assert (m.table, m.day, m.target, m.rows) == (f"raw.{t.name}", D0.isoformat(), export.target, expected)
        assert m.query_id.startswith("export-") and m.created_at
        assert [(c.name, c.clickhouse_type) for c in m.schema] == table_columns(clickhouse, t)
        stored = data_objects(target, prefix)
        assert sorted(stored) == [o.name for o in m.objects]
        assert all(name.startswith("part-") and name.endswith(".parquet") for name in stored)
        # pyarrow: every object decodes, rows and bytes are the manifest's
        tables = []
        for entry in m.objects:
            data = target.read(prefix + entry.name)
            assert len(data) == entry.bytes == stored[entry.name]
            assert hashlib.sha256(data).hexdigest() == entry.sha256
            tables.append(pq.read_table(io.BytesIO(data)))
            assert tables[-1].num_rows == entry.rows
        whole = pa.concat_tables(tables)
        assert whole.num_rows == expected
        assert whole.column_names == [c.name for c in m.schema]
        # ClickHouse reads the whole day back through the same table function (hive dt= column included)
        glob = target.table_function(prefix + "part-*.parquet")
        with clickhouse.client() as ch:
            count, days = ch.query(f"SELECT count(), groupUniqArray(toString(dt)) FROM {glob}").result_rows[0]
        assert (count, days) == (expected, [D0.isoformat()])
        meta = md[t.name]
        assert meta["rows"].value == expected and meta["objects"].value == len(m.objects)
        assert meta["bytes"].value == m.bytes and meta["seconds"].value >= 0
        assert str(meta["location"].value).rstrip("/") == target.location(prefix).rstrip("/")
    agent = manifest_of(target, export, table("raw.agent_events"), D0)
    assert len(agent.objects) == 3  # 2,600 rows at 1,000 a part
    with clickhouse.client() as ch:
        ids = {str(r[0]) for r in ch.query(
            "SELECT event_id FROM raw.agent_events WHERE toDate(occurred_at) = {day:Date}", parameters={"day": D0}
        ).result_rows}  # fmt: skip
    prefix = export.day_prefix(table("raw.agent_events"), D0)
    exported = {
        str(u)
        for o in agent.objects
        for u in pq.read_table(io.BytesIO(target.read(prefix + o.name)), columns=["event_id"]).column(0).to_pylist()
    }
    assert exported == ids


def test_rerun_replaces_the_day(seeded, clickhouse, s3, export, target, target_name):
    t = table("raw.agent_events")
    day = MUTATED_DAY[target_name]
    prefix = export.day_prefix(t, day)
    assert run([t], day, clickhouse, s3, export).success
    first = manifest_of(target, export, t, day)
    objects_first = data_objects(target, prefix)
    assert run([t], day, clickhouse, s3, export).success
    second = manifest_of(target, export, t, day)
    assert data_objects(target, prefix) == objects_first  # same names and sizes, nothing added
    assert [(o.name, o.rows, o.sha256) for o in second.objects] == [(o.name, o.rows, o.sha256) for o in first.objects]
    assert second.rows == first.rows == AGENT_ROWS[day]
    assert second.query_id != first.query_id

    with clickhouse.client() as ch:
        ch.command(
            "ALTER TABLE raw.agent_events DELETE WHERE toDate(occurred_at) = {day:Date} AND workspace_id = 'ws_exp_0'",
            parameters={"day": day},
            settings={"mutations_sync": 2},  # wait until the rows are gone
        )
    remaining = source_rows(clickhouse, t, day)
    assert 0 < remaining < first.rows
    result = run([t], day, clickhouse, s3, export)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    third = manifest_of(target, export, t, day)
    assert third.rows == remaining
    assert len(third.objects) == 1  # 600 rows: one object, the earlier second one is gone
    assert sorted(data_objects(target, prefix)) == ["part-00000.parquet"]
    data = target.read(prefix + "part-00000.parquet")
    assert pq.read_table(io.BytesIO(data)).num_rows == remaining
    assert set(pq.read_table(io.BytesIO(data)).column("workspace_id").to_pylist()) == {"ws_exp_1", "ws_exp_2"}


def test_empty_day_has_one_empty_object_with_the_schema(seeded, clickhouse, s3, export, target):
    t = table("raw.spans")
    result = run([t], EMPTY, clickhouse, s3, export)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    m = manifest_of(target, export, t, EMPTY)
    assert m.rows == 0 and [o.rows for o in m.objects] == [0]
    schema = pq.read_schema(io.BytesIO(target.read(export.day_prefix(t, EMPTY) + m.objects[0].name)))
    assert schema.names == [c.name for c in m.schema] and "attributes" in schema.names


def test_check_fails_on_a_tampered_object(seeded, clickhouse, s3, export, target):
    t = table("raw.product_events")
    assert run([t], D0, clickhouse, s3, export).success
    prefix = export.day_prefix(t, D0)
    m = manifest_of(target, export, t, D0)
    key = prefix + m.objects[0].name
    original = target.read(key)
    try:
        # A valid Parquet file with one row fewer: pyarrow and ClickHouse both read it.
        shorter = pq.read_table(io.BytesIO(original)).slice(1)
        buf = io.BytesIO()
        pq.write_table(shorter, buf)
        target.write(key, buf.getvalue())
        result = run([t], D0, clickhouse, s3, export, checks_only=True)
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed and evaluation.severity.value == "ERROR"
        assert target.location(key) in (evaluation.description or "")
        assert "sha256" in evaluation.description and f"counts {m.rows - 1} rows" in evaluation.description
        assert not result.get_asset_materialization_events()  # the check alone ran

        target.write(key, original + b"junk")  # no longer Parquet at all
        (evaluation,) = run([t], D0, clickhouse, s3, export, checks_only=True).get_asset_check_evaluations()
        assert not evaluation.passed and "pyarrow cannot read it" in (evaluation.description or "")

        target.write(prefix + "part-00009.parquet", original)  # a stray duplicate object
        target.write(key, original)
        (evaluation,) = run([t], D0, clickhouse, s3, export, checks_only=True).get_asset_check_evaluations()
        assert not evaluation.passed and "part-00009.parquet: not in the manifest" in (evaluation.description or "")
    finally:
        result = run([t], D0, clickhouse, s3, export)  # a re-export repairs the day
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert sorted(data_objects(target, prefix)) == [o.name for o in m.objects]


def test_mart_export_holds_the_marts_rows(seeded, clickhouse, s3, export, target, dbt):
    t = table("marts.mart_llm_daily")
    dbt(
        "build", "--select", "stg_kafka__agent_events", "mart_llm_daily",
        vars={"min_date": D0.isoformat(), "max_date": (D0 + timedelta(days=1)).isoformat()},
    )  # fmt: skip
    expected = source_rows(clickhouse, t, D0)
    assert expected == 3  # one row per workspace (ws_exp_0..2), model and provider
    result = run([t], D0, clickhouse, s3, export)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    m = manifest_of(target, export, t, D0)
    assert m.rows == expected
    data = pq.read_table(io.BytesIO(target.read(export.day_prefix(t, D0) + m.objects[0].name)))
    assert sorted(data.column("workspace_id").to_pylist()) == ["ws_exp_0", "ws_exp_1", "ws_exp_2"]
    assert sum(data.column("calls").to_pylist()) == AGENT_ROWS[D0]


def test_summary_reads_the_manifests(seeded, clickhouse, s3, export):
    assert run([table("raw.product_events")], D0, clickhouse, s3, export).success
    out = export_summary(export, s3, [D0, EMPTY - timedelta(days=5)])
    assert out["target"] == export.target
    product = out["tables"]["raw.product_events"]
    assert list(product) == [D0.isoformat()]  # the other day has no export
    assert product[D0.isoformat()]["objects"] == 1 and product[D0.isoformat()]["rows"] == 700
    assert out["tables"]["raw.agent_events"][D0.isoformat()]["objects"] == 3


def test_a_day_past_the_ttl_keeps_its_export(seeded, clickhouse, s3, export, target):
    """raw.agent_events keeps 90 days: re-exporting an older day would overwrite the only
    complete copy with what is left, so the asset refuses while that day has a manifest."""
    t = table("raw.agent_events")
    old = TODAY - timedelta(days=95)
    manifest_key = export.day_prefix(t, old) + MANIFEST_NAME
    target.write(manifest_key, b"{}")
    result = run([t], old, clickhouse, s3, export)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "keeps 90 days" in str(failure.event_specific_data.error)
    assert target.read(manifest_key) == b"{}"  # left alone


def test_local_target_writes_below_the_configured_directory(export, target_name):
    if target_name != "local":
        pytest.skip("local target only")
    assert any(Path(export.local_dir).rglob("_manifest.json"))
