"""CDC checks: replication lag, replica freshness, row-count parity and schema drift per table."""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    asset_check,
    multi_asset_check,
)

from platform_assets.cdc.lag import evaluate, parity_tolerance
from platform_assets.cdc.monitor import read_lag, table_states
from platform_assets.cdc.resources import CdcResource, configured_tables
from platform_assets.core.keys import REPLICA_DB_KEY, table_key
from platform_assets.core.resources import ClickHouseResource, PostgresResource

HEARTBEAT_INTERVAL_S = 60


@asset_check(asset=REPLICA_DB_KEY, name="replication_lag", description="Slot lag (bytes) and heartbeat lag (s).")
def replication_lag(
    context: AssetCheckExecutionContext,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
) -> AssetCheckResult:
    reading = read_lag(postgres, clickhouse, cdc.replica_database, context)
    verdict = evaluate(reading, previous_lsn=None, stalled_ticks=0, t=cdc.thresholds())
    return AssetCheckResult(
        passed=not verdict.flagged,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(verdict.reasons) or "within thresholds",
        metadata={k: v for k, v in reading.figures().items() if v is not None and k != "errors"},
    )


@asset_check(
    asset=REPLICA_DB_KEY,
    name="replica_freshness",
    description="The newest heartbeat visible in ClickHouse is at most one interval plus the lag threshold old.",
)
def replica_freshness(
    context: AssetCheckExecutionContext,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
) -> AssetCheckResult:
    reading = read_lag(postgres, clickhouse, cdc.replica_database, context)
    age = reading.heartbeat_age_s
    limit = HEARTBEAT_INTERVAL_S + cdc.max_lag_seconds
    return AssetCheckResult(
        passed=age is not None and age <= limit,
        severity=AssetCheckSeverity.WARN,
        description=f"newest heartbeat in ClickHouse is {age:.1f} s old (limit {limit:.0f} s)"
        if age is not None
        else "no heartbeat visible in ClickHouse",
        metadata={"heartbeat_age_s": age if age is not None else -1.0, "limit_s": limit},
    )


def _table_check_specs(tables: list[str]) -> list[AssetCheckSpec]:
    specs = []
    for table in tables:
        specs.append(AssetCheckSpec("row_parity", asset=table_key(table), description="Live rows match the source."))
        specs.append(AssetCheckSpec("schema_drift", asset=table_key(table), description="Columns match the source."))
    return specs


def build_table_checks(tables: list[str]) -> AssetChecksDefinition:
    """Row-count parity and schema drift for each replicated table."""

    @multi_asset_check(name="replica_tables_checks", specs=_table_check_specs(tables), can_subset=True)
    def replica_tables_checks(
        context: AssetCheckExecutionContext,
        postgres: PostgresResource,
        clickhouse: ClickHouseResource,
        cdc: CdcResource,
    ) -> Iterator[AssetCheckResult]:
        yield from _table_checks(context, postgres, clickhouse, cdc, tables)

    return replica_tables_checks


def _table_checks(
    context: AssetCheckExecutionContext,
    postgres: PostgresResource,
    clickhouse: ClickHouseResource,
    cdc: CdcResource,
    tables: list[str],
) -> Iterator[AssetCheckResult]:
    reading = read_lag(postgres, clickhouse, cdc.replica_database, context)
    tolerance = parity_tolerance(reading.lag_seconds, cdc.expected_change_rate)
    states = table_states(postgres, clickhouse, cdc.replica_database, tables, context)
    selected = context.selected_asset_check_keys
    for table, state in states.items():
        key = table_key(table)
        diff = None if state.replica_rows is None else state.source_rows - state.replica_rows
        if any(k.asset_key == key and k.name == "row_parity" for k in selected):
            yield AssetCheckResult(
                asset_key=key,
                check_name="row_parity",
                passed=diff is not None and abs(diff) <= tolerance,
                severity=AssetCheckSeverity.ERROR,
                description=f"source {state.source_rows} rows, replica {state.replica_rows}, "
                f"tolerance {tolerance} (lag {reading.lag_seconds} s)",
                metadata={
                    "source_rows": state.source_rows,
                    "replica_rows": state.replica_rows if state.replica_rows is not None else -1,
                    "difference": diff if diff is not None else -1,
                    "tolerance": tolerance,
                },
            )
        if any(k.asset_key == key and k.name == "schema_drift" for k in selected):
            yield AssetCheckResult(
                asset_key=key,
                check_name="schema_drift",
                passed=not state.drifted,
                severity=AssetCheckSeverity.ERROR,
                description=state.describe_drift() if state.drifted else "columns match",
                metadata={
                    "only_in_source": state.only_in_source,
                    "only_in_replica": state.only_in_replica,
                    "repair": "run the cdc_repair_drift job" if state.drifted else "",
                },
            )


replica_tables_checks = build_table_checks(configured_tables())
