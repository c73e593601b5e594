"""ClickHouse backups to S3 and their restore, on real servers: the session stack's ClickHouse
backs up raw and marts to its moto S3, an EMPTY second ClickHouse (a scratch stack with only
clickhouse up, no schema applied: the backup holds the databases' definitions) restores them,
and every table has the source's rows and column sums. Also: a re-run replaces the day, a bad
endpoint or bucket fails naming it, no secret reaches system.query_log or the logs, and the
schedule targets the asset and skips when automation is off.

Rows of their own on DAY (70 days ago, inside the raw TTL; the export tests use 80..77).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_asset_context,
    build_schedule_context,
    materialize,
)

from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.settings import read
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.ops.backup import BackupError, backup_databases, list_keys
from platform_assets.ops.backup_assets import (
    BACKUP_KEY,
    clickhouse_backup,
    clickhouse_backup_daily,
    restore_backup_job,
)
from platform_assets.ops.resources import BackupResource, build_backup_resource
from platform_assets.stack.process import free_port
from platform_assets.stack.scratch import scratch_stack

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=75)  # its own day: no other test writes raw rows there (raw TTL 90 days)
AGENT_ROWS, PRODUCT_ROWS, SPAN_ROWS = 1500, 400, 300
NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")


@pytest.fixture(scope="module")
def seeded(stack, clickhouse, kafka, dbt):
    """Schema in place, known rows on DAY in three raw tables, and a mart built from them."""
    result = materialize(
        [kafka_topics, clickhouse_schema],
        resources={"clickhouse": clickhouse, "kafka": kafka},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    with clickhouse.client() as ch:
        ch.command(
            "INSERT INTO raw.agent_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, "
            "model, provider, input_tokens, output_tokens, latency_ms, success, cost_usd, context) "
            "SELECT generateUUIDv4(), 'llm_call', toDateTime64({day:Date}, 3, 'UTC') + number * 30, "
            "concat('ws_bk_', toString(number % 3)), concat('s', toString(number % 40)), "
            "lower(hex(MD5(toString(number % 70)))), 'gpt-4o', 'openai', 100 + number % 900, 10 + number % 90, "
            '50 + number % 2000, number % 17 != 0, (number % 1000) / 1e5, \'{"agent_name": "bk"}\' '
            f"FROM numbers({AGENT_ROWS})",
            parameters={"day": DAY},
        )
        ch.command(
            "INSERT INTO raw.product_events (event_id, event_type, occurred_at, workspace_id, session_id, actor_id, "
            "properties) SELECT generateUUIDv4(), 'page_view', toDateTime64({day:Date}, 3, 'UTC') + number * 60, "
            f"'ws_bk_0', 's', 'u', '{{\"path\": \"/\"}}' FROM numbers({PRODUCT_ROWS})",
            parameters={"day": DAY},
        )
        ch.command(
            "INSERT INTO raw.spans (trace_id, span_id, tenant, service, operation, start_time, end_time, duration_ms, "
            "attributes) SELECT lower(hex(MD5(toString(number)))), lower(hex(substring(MD5(toString(number)), 1, 8))), "
            "'ws_bk_0', 'agent', 'chat', toDateTime64({day:Date}, 3, 'UTC') + number, "
            "toDateTime64({day:Date}, 3, 'UTC') + number + 1, 1000 + number, map('gen_ai.operation.name', 'chat') "
            f"FROM numbers({SPAN_ROWS})",
            parameters={"day": DAY},
        )
    window = {"min_date": DAY.isoformat(), "max_date": (DAY + timedelta(days=1)).isoformat()}
    dbt("run", "--select", "+mart_llm_daily", vars=window)
    return clickhouse


@pytest.fixture(scope="module")
def backup_res() -> BackupResource:
    return BackupResource(prefix=f"backups-test-{uuid.uuid4().hex[:8]}")  # own keys on the session's bucket


@pytest.fixture(scope="module")
def empty_stack():
    """A second ClickHouse with nothing applied: what a restore after losing a server starts from."""
    with scratch_stack("platform-test-restore-") as other:
        other.up(["clickhouse"])
        yield other


@pytest.fixture(scope="module")
def empty_clickhouse(empty_stack) -> ClickHouseResource:
    return read(ClickHouseResource, empty_stack.env())


# Every event of the Dagster runs of this module, as text: what the run's logs could leak.
RUN_EVENTS: list[str] = []


def backup_run(backup: BackupResource, clickhouse, s3, day: date = DAY, raise_on_error: bool = True):
    result = materialize(
        [clickhouse_backup],
        partition_key=day.isoformat(),
        resources={"clickhouse": clickhouse, "s3": s3, "backup": backup},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )
    RUN_EVENTS.extend(str(e) for e in result.all_events)
    return result


def restore_run(backup: BackupResource, clickhouse, s3, allow_non_empty: bool = False):
    config = {"day": DAY.isoformat(), "allow_non_empty": allow_non_empty}
    result = restore_backup_job.execute_in_process(
        run_config={"ops": {"restore_backup_op": {"config": config}}},
        resources={"clickhouse": clickhouse, "s3": s3, "backup": backup},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    RUN_EVENTS.extend(str(e) for e in result.all_events)
    return result


def metadata(result) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == BACKUP_KEY]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error) for e in result.all_events if e.is_failure and e.is_step_failure)


def data_tables(clickhouse) -> list[str]:
    with clickhouse.client() as ch:
        rows = ch.query(
            "SELECT database || '.' || name FROM system.tables WHERE database IN ('raw', 'marts') "
            "AND engine LIKE '%MergeTree' ORDER BY 1"
        ).result_rows
    return [r[0] for r in rows]


def all_tables(clickhouse) -> list[tuple[str, str, str]]:
    with clickhouse.client() as ch:
        rows = ch.query(
            "SELECT database, name, engine FROM system.tables WHERE database IN ('raw', 'marts') ORDER BY 1, 2"
        ).result_rows
    return [tuple(r) for r in rows]


def fingerprint(clickhouse, qualified: str) -> dict[str, float]:
    """count() and sum() of every numeric column of a table."""
    database, name = qualified.split(".")
    with clickhouse.client() as ch:
        columns = ch.query(
            "SELECT name, type FROM system.columns WHERE database = {d:String} AND table = {t:String} "
            "ORDER BY position",
            parameters={"d": database, "t": name},
        ).result_rows
        numeric = [c for c, t in columns if NUMERIC.match(t)]
        exprs = ["count()", *(f"toFloat64(sum(`{c}`))" for c in numeric)]
        values = ch.query(f"SELECT {', '.join(exprs)} FROM {qualified}").result_rows[0]
    return dict(zip(["rows", *numeric], [float(v or 0) for v in values], strict=True))


def backup_listing(s3, backup: BackupResource, day: date = DAY) -> tuple[set[str], str]:
    """The file names the day's .backup lists (one backup's files) and its backup id."""
    location = backup.location(s3, day)
    body = s3.get_client().get_object(Bucket=location.bucket, Key=location.key + ".backup")["Body"].read().decode()
    (backup_id,) = re.findall(r"<backup_id>([^<]+)</backup_id>", body)
    return set(re.findall(r"<name>([^<]+)</name>", body)), backup_id


@pytest.fixture(scope="module")
def first_backup(seeded, backup_res, s3):
    result = backup_run(backup_res, seeded, s3)
    assert result.success
    return metadata(result)


@pytest.mark.e2e
def test_backup_names_its_location_tables_and_what_clickhouse_wrote(first_backup, seeded, backup_res, s3):
    m = first_backup
    location = backup_res.location(s3, DAY)
    assert m["location"] == f"s3://{s3.bucket}/{backup_res.prefix}/{DAY.isoformat()}/" == location.uri
    assert m["status"] == "BACKUP_CREATED" and re.fullmatch(r"[0-9a-f-]{36}", m["backup_id"])
    assert m["databases"] == ["marts", "raw"]
    assert m["tables"]["raw.agent_events"]["rows"] >= AGENT_ROWS
    assert m["tables"]["marts.mart_llm_daily"]["rows"] > 0
    assert {f"{d}.{n}" for d, n, _ in all_tables(seeded)} == set(m["tables"])
    assert m["num_files"] > 0 and m["total_size"] > 0 and m["replaced_objects"] == 0
    assert m["rows"] == sum(t["rows"] or 0 for t in m["tables"].values())


@pytest.fixture(scope="module")
def restored(first_backup, empty_clickhouse, backup_res, s3):
    """The first backup restored into the empty server, through restore_backup_job."""
    assert all_tables(empty_clickhouse) == []
    result = restore_run(backup_res, empty_clickhouse, s3)
    assert result.success, failure_message(result)
    return empty_clickhouse


@pytest.mark.e2e
def test_restore_into_an_empty_server_gives_every_table_the_sources_rows_and_sums(restored, seeded, empty_clickhouse):
    assert all_tables(empty_clickhouse) == all_tables(seeded)  # views and engines too
    tables = data_tables(seeded)
    assert {"raw.agent_events", "raw.product_events", "raw.spans", "marts.mart_llm_daily"} <= set(tables)
    for table in tables:
        source, restored = fingerprint(seeded, table), fingerprint(empty_clickhouse, table)
        assert restored == pytest.approx(source, rel=1e-9), table
    with empty_clickhouse.client() as ch:  # the inserted day, not just totals
        n = ch.query(
            "SELECT count() FROM raw.agent_events WHERE toDate(occurred_at) = {d:Date} AND workspace_id LIKE 'ws_bk_%'",
            parameters={"d": DAY},
        ).result_rows[0][0]
    assert n == AGENT_ROWS


@pytest.mark.e2e
def test_rerunning_the_day_replaces_its_backup(first_backup, seeded, backup_res, s3):
    location = backup_res.location(s3, DAY)
    before = list_keys(s3.get_client(), location)
    result = backup_run(backup_res, seeded, s3)
    assert result.success
    m = metadata(result)
    assert m["backup_id"] != first_backup["backup_id"]
    assert m["replaced_objects"] == len(before)
    keys = list_keys(s3.get_client(), location)
    relative = {k[len(location.key) :] for k in keys}
    assert [k for k in relative if k.endswith(".backup")] == [".backup"]  # one backup under the prefix
    listed, backup_id = backup_listing(s3, backup_res)
    assert backup_id == m["backup_id"]
    assert relative <= listed | {".backup"}  # nothing the new backup does not list (it stores duplicates once)


@pytest.mark.e2e
def test_restore_refuses_non_empty_tables_unless_told(restored, empty_clickhouse, backup_res, s3):
    before = fingerprint(empty_clickhouse, "raw.agent_events")["rows"]
    result = restore_run(backup_res, empty_clickhouse, s3)
    assert not result.success
    message = failure_message(result)
    assert "refusing to restore" in message and "raw.agent_events" in message, message
    assert fingerprint(empty_clickhouse, "raw.agent_events")["rows"] == before
    forced = restore_run(backup_res, empty_clickhouse, s3, allow_non_empty=True)
    assert forced.success, failure_message(forced)
    assert fingerprint(empty_clickhouse, "raw.agent_events")["rows"] > before  # the backup's parts were added


@pytest.mark.e2e
def test_restore_of_a_day_without_backup_fails_naming_it(empty_clickhouse, backup_res, s3):
    config = {"day": (DAY - timedelta(days=1)).isoformat()}
    result = restore_backup_job.execute_in_process(
        run_config={"ops": {"restore_backup_op": {"config": config}}},
        resources={"clickhouse": empty_clickhouse, "s3": s3, "backup": backup_res},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert f"no backup at s3://{s3.bucket}/{backup_res.prefix}/{config['day']}/" in failure_message(result)


@pytest.mark.e2e
def test_a_bad_endpoint_fails_naming_it(seeded, s3):
    """Called as the run calls it, once: in a run, SERVER_RETRY repeats it 3 times, 10 to 80 s apart."""
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    bad = BackupResource(prefix=f"backups-bad-{uuid.uuid4().hex[:6]}", clickhouse_s3_endpoint=endpoint)
    context = build_asset_context(partition_key=DAY.isoformat())
    with pytest.raises(BackupError) as failed:  # a hang (unbounded S3 retries) is the suite timeout's
        clickhouse_backup(context, clickhouse=seeded, s3=s3, backup=bad)
    message = str(failed.value)
    assert endpoint in message and "BACKUP of marts, raw" in message and "BACKUP_FAILED" in message, message
    assert "Connection refused" in message, message


@pytest.mark.integration
def test_a_missing_bucket_fails_naming_it(seeded, s3, backup_res):
    location = backup_res.location(s3, DAY)
    wrong = dataclasses.replace(location, bucket="no-such-bucket-bk")
    with seeded.client() as ch, pytest.raises(BackupError, match="no-such-bucket-bk"):
        backup_databases(ch, _NoObjects(), wrong)


class _NoObjects:
    """A bucket client for a bucket that is not there: nothing to list or delete."""

    def get_paginator(self, _name):
        return self

    def paginate(self, **_kw):
        return [{}]

    def delete_objects(self, **_kw):
        raise AssertionError("nothing to delete")


@pytest.mark.e2e
def test_no_secret_reaches_the_query_log_or_the_logs(
    first_backup, restored, seeded, empty_clickhouse, s3, stack, empty_stack
):
    secret = s3.aws_secret_access_key
    assert secret and len(secret) >= 16
    for server in (seeded, empty_clickhouse):
        with server.client() as ch:
            ch.command("SYSTEM FLUSH LOGS")
            statements = ch.query(
                "SELECT query FROM system.query_log WHERE query ILIKE '%BACKUP DATABASE%' "
                "OR query ILIKE '%RESTORE DATABASE%'"
            ).result_rows
            leaked = ch.query(
                "SELECT count() FROM system.query_log WHERE position(query, {s:String}) > 0",
                parameters={"s": secret},
            ).result_rows[0][0]
            names = [r[0] for r in ch.query("SELECT name FROM system.backups").result_rows]
        assert statements and all("[HIDDEN]" in q[0] for q in statements if "S3(" in q[0])
        assert leaked == 0
        assert names and not any(secret in n for n in names)
    for server_stack in (stack, empty_stack):  # the servers' own logs
        for path in (Path(server_stack.cfg.root) / "logs").glob("*.log"):
            assert secret not in path.read_text(errors="replace"), path
    assert RUN_EVENTS and not any(secret in e for e in RUN_EVENTS)  # the Dagster runs' events


@pytest.mark.unit
def test_the_schedule_backs_up_the_closed_day_and_skips_when_automation_is_off(monkeypatch):
    assert clickhouse_backup_daily.job_name == "clickhouse_backup_job"
    assert clickhouse_backup_daily.execution_timezone == "UTC"
    assert clickhouse_backup_daily.cron_schedule == "30 1 * * *"
    at = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    monkeypatch.setenv("PLATFORM_AUTOMATION", "on")
    request = clickhouse_backup_daily(build_schedule_context(scheduled_execution_time=at))
    assert isinstance(request, RunRequest) and request.partition_key == "2026-03-01"
    monkeypatch.setenv("PLATFORM_AUTOMATION", "off")
    skipped = clickhouse_backup_daily(build_schedule_context(scheduled_execution_time=at))
    assert isinstance(skipped, SkipReason) and "automation is off" in (skipped.skip_message or "")


@pytest.mark.unit
def test_the_schedule_targets_the_backup_asset():
    from platform_assets.definitions import defs

    repo = defs.get_repository_def()
    schedule = next(s for s in repo.schedule_defs if s.name == "clickhouse_backup_daily")
    assert repo.get_job(schedule.job_name).asset_layer.selected_asset_keys == {BACKUP_KEY}
    spec = repo.asset_graph.get(BACKUP_KEY)
    assert spec.group_name == "ops" and spec.kinds == {"clickhouse", "s3"} and "Grain" in (spec.description or "")
    assert spec.partitions_def is not None and repo.get_job("restore_backup_job") is not None


@pytest.mark.unit
def test_backup_settings_are_read_at_load_and_checked():
    from platform_assets.core.settings import ConfigError

    assert build_backup_resource({}).prefix == "backups"
    res = build_backup_resource({"BACKUP_PREFIX": "/bk/", "BACKUP_CLICKHOUSE_S3_ENDPOINT": "http://minio:9000"})
    assert res.prefix == "bk" and res.clickhouse_s3_endpoint == "http://minio:9000"
    with pytest.raises(ConfigError, match="BACKUP_CLICKHOUSE_S3_ENDPOINT"):
        build_backup_resource({"BACKUP_CLICKHOUSE_S3_ENDPOINT": "minio:9000"})
    with pytest.raises(ConfigError, match="BACKUP_PREFIX"):
        build_backup_resource({"BACKUP_PREFIX": "/"})
