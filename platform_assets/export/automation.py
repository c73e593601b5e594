"""Exports that run by themselves, and the guard that no raw day expires unexported.

- Sensor `export_finished_days`: for each of the last LOOKBACK_DAYS closed UTC days, requests one
  run of the exports whose source is complete: a mart once its partition of that day was built
  after the day closed (transform_previous_day at 00:30), a raw table RAW_GRACE after midnight.
  A day is requested again only when a mart's day is rebuilt after its export (the run key holds
  the upstream materializations, so one state is never requested twice).
- Check `exported_before_ttl` on each raw export: fails (ERROR) naming the table and every day
  that has rows, is within TTL_WARNING_DAYS of the table's TTL and has no manifest on the target.
  Job `export_ttl_guard_job` runs the checks alone, daily (schedule `export_ttl_guard_daily`).

No `from __future__ import annotations` here: Dagster reads the check's context annotation.
"""

import hashlib
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_check,
    define_asset_job,
    schedule,
    sensor,
)

from platform_assets.core.access import EXPORT
from platform_assets.core.automation import automation_status, day_closed_at, latest_materialization
from platform_assets.core.partitions import daily_partitions
from platform_assets.core.resources import ClickHouseResource, ObjectStoreResource
from platform_assets.export.assets import EXPORT_ASSETS, RETRY
from platform_assets.export.exporter import ttl_days
from platform_assets.export.resources import ExportResource
from platform_assets.export.tables import EXPORT_TABLES, RAW_TABLES, ExportTable
from platform_assets.export.target import MANIFEST_NAME, Target

LOOKBACK_DAYS = 7  # closed days the sensor looks at; older gaps are the TTL guard's to report
RAW_GRACE = timedelta(minutes=30)  # a raw day is exported this long after it closed (late Kafka rows)
SENSOR_INTERVAL_S = 300
TTL_WARNING_DAYS = 7  # the guard fails this many days before a day's rows start to expire
TTL_CHECK_NAME = "exported_before_ttl"


def closed_days(now: datetime, lookback: int = LOOKBACK_DAYS) -> list[date]:
    """The last ``lookback`` closed UTC days, oldest first, none before the first partition."""
    first = daily_partitions.start.date()
    today = now.astimezone(UTC).date()
    return [d for d in (today - timedelta(days=n) for n in range(lookback, 0, -1)) if d >= first]


def pending_exports(
    instance: DagsterInstance, day: date, now: datetime, tables: tuple[ExportTable, ...] = EXPORT_TABLES
) -> tuple[dict[AssetKey, str], list[str]]:
    """(export key -> upstream marker) of the exports of ``day`` to run now, and the marts that
    were not yet built since the day closed (what the export waits for)."""
    closed = day_closed_at(day)
    due: dict[AssetKey, str] = {}
    waiting: list[str] = []
    for table in tables:
        exported = latest_materialization(instance, table.asset_key, day)
        if table.database == "raw":
            if now >= closed + RAW_GRACE and exported is None:
                due[table.asset_key] = "closed"
            continue
        built = latest_materialization(instance, table.upstream_key, day)
        if built is None or built.timestamp < closed.timestamp():
            waiting.append(table.upstream_key.to_user_string())
        elif exported is None or exported.storage_id < built.storage_id:
            due[table.asset_key] = str(built.storage_id)
    return due, waiting


def run_key(day: date, due: dict[AssetKey, str]) -> str:
    state = ",".join(sorted(f"{k.to_user_string()}@{m}" for k, m in due.items()))
    return f"export:{day.isoformat()}:{hashlib.sha256(state.encode()).hexdigest()[:16]}"


@sensor(
    name="export_finished_days",
    asset_selection=AssetSelection.assets(*EXPORT_ASSETS),
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=automation_status(),
    description="Exports each closed UTC day once its marts are built after the day closed (raw tables "
    f"{int(RAW_GRACE.total_seconds() // 60)} min after midnight); looks back {LOOKBACK_DAYS} days.",
)
def export_finished_days(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    now = datetime.now(UTC)
    requests = []
    waiting_by_day = {}
    for day in closed_days(now):
        due, waiting = pending_exports(context.instance, day, now)
        if waiting:
            waiting_by_day[day.isoformat()] = waiting
        if due:
            requests.append(
                RunRequest(
                    run_key=run_key(day, due),
                    partition_key=day.isoformat(),
                    asset_selection=sorted(due, key=lambda k: k.to_user_string()),
                    tags={"platform/domain": "export", "platform/trigger": "export_finished_days"},
                )
            )
    if requests:
        return SensorResult(run_requests=requests)
    detail = "; ".join(f"{d} waits for {', '.join(w)}" for d, w in waiting_by_day.items())
    return SkipReason(
        f"every closed day of the last {LOOKBACK_DAYS} is exported"
        + (f" or waits for its marts: {detail}" if detail else "")
    )


def has_manifest(target: Target, day_prefix: str) -> bool:
    return any(o.key.endswith(MANIFEST_NAME) for o in target.list_objects(day_prefix))


def days_near_ttl(client, table: ExportTable, today: date) -> tuple[int | None, list[date]]:
    """The table's TTL in days and the days with rows that it drops within TTL_WARNING_DAYS (or is dropping)."""
    ttl = ttl_days(client, table)
    if ttl is None:
        return None, []
    horizon = today - timedelta(days=ttl - TTL_WARNING_DAYS)
    rows = client.query(
        f"SELECT DISTINCT {table.day_expr} AS day FROM {table.qualified} "
        f"WHERE {table.day_expr} <= {{h:Date}} ORDER BY day",
        parameters={"h": horizon},
    ).result_rows
    return ttl, [r[0] for r in rows]


def build_ttl_check(table: ExportTable) -> AssetChecksDefinition:
    @asset_check(
        asset=table.asset_key,
        name=TTL_CHECK_NAME,
        description=f"Every day of {table.database}.{table.name} that its TTL drops within {TTL_WARNING_DAYS} days "
        "has been exported (a _manifest.json on the target); fails naming the days that have not.",
        retry_policy=RETRY,
    )
    def _check(
        context: AssetCheckExecutionContext,
        clickhouse: ClickHouseResource,
        s3: ObjectStoreResource,
        export: ExportResource,
    ) -> AssetCheckResult:
        today = datetime.now(UTC).date()
        with clickhouse.as_role(EXPORT).client(context) as client:
            ttl, at_risk = days_near_ttl(client, table, today)
        target = export.make_target(s3)
        missing = [d for d in at_risk if not has_manifest(target, export.day_prefix(table, d))]
        name = f"{table.database}.{table.name}"
        if ttl is None:
            description = f"{name} has no TTL: nothing expires"
        elif missing:
            days = ", ".join(f"{d} ({_expiry(d, ttl, today)})" for d in missing)
            description = (
                f"{name} keeps {ttl} days; not exported: {days}. Export them now: materialize "
                f"{table.asset_key.to_user_string()} for these partitions"
            )
        else:
            description = (
                f"{name}: the {len(at_risk)} day(s) its {ttl}-day TTL drops within {TTL_WARNING_DAYS} days are exported"
            )
        return AssetCheckResult(
            passed=not missing,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "ttl_days": ttl or 0,
                "days_at_risk": len(at_risk),
                "not_exported": MetadataValue.json([d.isoformat() for d in missing]),
                "location": MetadataValue.text(target.location(f"{export.prefix.strip('/')}/{table.path}/")),
            },
        )

    return _check


def _expiry(day: date, ttl: int, today: date) -> str:
    left = (day + timedelta(days=ttl) - today).days
    return f"rows expire in {left} day(s)" if left > 0 else "rows are being dropped now"


TTL_CHECKS = [build_ttl_check(t) for t in RAW_TABLES]

export_ttl_guard_job = define_asset_job(
    "export_ttl_guard_job",
    selection=AssetSelection.checks(*TTL_CHECKS),
    tags={"platform/domain": "export"},
    description="The raw tables' exported_before_ttl checks, alone (no export runs).",
)


@schedule(
    name="export_ttl_guard_daily",
    job=export_ttl_guard_job,
    cron_schedule="15 1 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,  # read-only, and the loud failure is its point
)
def export_ttl_guard_daily(context: ScheduleEvaluationContext) -> RunRequest:
    at = context.scheduled_execution_time
    day = (at or datetime.now(UTC)).date().isoformat()
    return RunRequest(run_key=f"export_ttl_guard:{day}")
