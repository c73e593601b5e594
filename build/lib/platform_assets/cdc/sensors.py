"""CDC sensors: replication lag (observations and a check result on the replica) and schema drift."""

import hashlib
import json

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetObservation,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from platform_assets.cdc.jobs import cdc_repair_drift
from platform_assets.cdc.lag import LagReading, Verdict, evaluate
from platform_assets.cdc.monitor import read_lag, table_states
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.keys import REPLICA_DB_KEY
from platform_assets.core.resources import ClickHouseResource, PostgresResource


def summarize(reading: LagReading, verdict: Verdict) -> str:
    lag_s = "n/a" if reading.lag_seconds is None else f"{reading.lag_seconds:.2f} s"
    age = "n/a" if reading.heartbeat_age_s is None else f"{reading.heartbeat_age_s:.1f} s"
    figures = (
        f"slot lag {reading.lag_bytes if reading.lag_bytes is not None else 'n/a'} bytes, heartbeat lag {lag_s} "
        f"(newest heartbeat in ClickHouse {age} old), slot active={reading.slot_active}, "
        f"wal_status={reading.wal_status}"
    )
    if verdict.flagged:
        return f"FLAGGED: {'; '.join(verdict.reasons)} | {figures}"
    return f"OK: {figures}"


@sensor(
    name="cdc_replication_lag",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[REPLICA_DB_KEY],
    description="Measures replication lag; records it on clickhouse/pg_repl and fails its replication_lag "
    "check past the thresholds or when the slot stops advancing.",
)
def cdc_replication_lag_sensor(
    context: SensorEvaluationContext,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
) -> SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    reading = read_lag(postgres, clickhouse, cdc.replica_database, context)
    verdict = evaluate(reading, state.get("lsn"), state.get("stalled_ticks", 0), cdc.thresholds())
    figures = {k: v for k, v in reading.figures().items() if v is not None}
    figures["errors"] = reading.errors
    events: list[AssetObservation | AssetCheckEvaluation] = [
        AssetObservation(asset_key=REPLICA_DB_KEY, metadata={"source": "cdc_replication_lag sensor", **figures})
    ]
    # A check result when the verdict changes (or on the first tick), not every 30 s.
    if state.get("flagged") != verdict.flagged:
        events.append(
            AssetCheckEvaluation(
                asset_key=REPLICA_DB_KEY,
                check_name="replication_lag",
                passed=not verdict.flagged,
                severity=AssetCheckSeverity.ERROR,
                description="; ".join(verdict.reasons) or "within thresholds",
                metadata={k: v for k, v in figures.items() if k != "errors"},
            )
        )
    cursor = json.dumps(
        {
            "lsn": reading.confirmed_flush_lsn or state.get("lsn"),
            "stalled_ticks": verdict.stalled_ticks,
            "flagged": verdict.flagged,
            "measured_at_ms": reading.measured_at_ms,
        }
    )
    return SensorResult(skip_reason=summarize(reading, verdict), asset_events=events, cursor=cursor)


@sensor(
    name="cdc_schema_drift",
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.STOPPED,  # repairs reload tables: opt in to doing it unattended
    job=cdc_repair_drift,
    description="Compares source and replica columns; requests cdc_repair_drift for the drifted tables.",
)
def cdc_schema_drift_sensor(
    context: SensorEvaluationContext, postgres: PostgresResource, clickhouse: ClickHouseResource, cdc: CdcResource
) -> SensorResult:
    try:
        states = table_states(postgres, clickhouse, cdc.replica_database, configured_tables(), context)
    except Exception as exc:  # noqa: BLE001 - an unreachable server is reported, not a crash
        return SensorResult(skip_reason=f"cannot compare schemas: {str(exc).splitlines()[0][:300]}")
    drifted = {t: s.describe_drift() for t, s in states.items() if s.drifted}
    if not drifted:
        return SensorResult(skip_reason=f"no drift in {len(states)} tables", cursor=context.cursor)
    signature = hashlib.sha256(json.dumps(drifted, sort_keys=True).encode()).hexdigest()[:16]
    if context.cursor == signature:
        return SensorResult(skip_reason=f"repair already requested for: {'; '.join(drifted.values())}")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"drift-{signature}",  # the same drift is repaired once
                run_config={"ops": {"repair_drifted_tables": {"config": {"tables": sorted(drifted)}}}},
                tags={"platform/drift": "; ".join(drifted.values())[:200]},
            )
        ],
        cursor=signature,
    )
