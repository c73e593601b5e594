"""rollup_matches_mart: the streaming rollup of LLM calls against the deduplicated hour mart.

The rollups (clickhouse_ddl/010) serve the recent hours to the panels and alerts; the marts are the
record of finished periods. Over every finished hour both hold, calls, errors and tokens per
workspace, service and model must agree. A difference is explained when raw.spans holds that many
extra rows for the hour (a span landed twice: Kafka redelivered it, the rollup counted both, the
staging dedup kept one) or rows that landed after the mart was built (the next build takes them).
The check fails on a difference that neither explains, and names every difference either way.
"""

from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from platform_assets.core.access import MONITOR
from platform_assets.core.resources import ClickHouseResource
from platform_assets.core.sql import load

MART_KEY = AssetKey(["marts", "mart_agent_metrics_1h"])
SHOWN = 20  # differing groups listed in the metadata


def explained(row: dict[str, Any]) -> bool:
    """Whether raw's duplicate and late rows cover the group's difference in calls."""
    extra = (row["rollup_calls"] or 0) - (row["mart_calls"] or 0)
    room = (row["duplicate_rows"] or 0) + (row["late_rows"] or 0)
    return 0 <= extra <= room


def compare(client: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The compared window and every differing group (a dict per row of rollup_vs_mart.sql)."""
    window = client.query(load(__file__, "rollup_vs_mart_window.sql"))
    lo, hi, built_at, hours = window.result_rows[0]
    info = {"compared_from": str(lo), "compared_to": str(hi), "mart_built_at": str(built_at), "hours": int(hours)}
    if hours == 0:
        return info, []
    result = client.query(
        load(__file__, "rollup_vs_mart.sql"), parameters={"lo": lo, "hi": hi, "built": built_at.replace(tzinfo=None)}
    )
    return info, [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]


def describe(row: dict[str, Any]) -> str:
    return (
        f"{row['hour']} {row['workspace_id']}/{row['service']}/{row['model']}: calls rollup {row['rollup_calls']} "
        f"mart {row['mart_calls']}, errors {row['rollup_errors']}/{row['mart_errors']}, tokens "
        f"{row['rollup_tokens']}/{row['mart_tokens']}; raw duplicates {row['duplicate_rows'] or 0}, "
        f"landed after the build {row['late_rows'] or 0}"
    )


@asset_check(
    asset=MART_KEY,
    name="rollup_matches_mart",
    blocking=False,
    description="Finished hours of rollups.llm_calls_1m against this mart per workspace, service and model; "
    "differences only where raw holds duplicate (Kafka redelivery) or late rows, which it names.",
)
def rollup_matches_mart(context: AssetCheckExecutionContext, clickhouse: ClickHouseResource) -> AssetCheckResult:
    with clickhouse.as_role(MONITOR).client(context) as client:
        info, rows = compare(client)
    unexplained = [r for r in rows if not explained(r)]
    duplicates = sum(int(r["duplicate_rows"] or 0) for r in rows)
    late = sum(int(r["late_rows"] or 0) for r in rows)
    metadata: dict[str, Any] = {
        **info,
        "differing_groups": len(rows),
        "unexplained_groups": len(unexplained),
        "duplicate_rows": duplicates,
        "late_rows": late,
        "differences": MetadataValue.json([describe(r) for r in (unexplained or rows)[:SHOWN]]),
    }
    if unexplained:
        description = f"{len(unexplained)} of {info['hours']} hours' groups differ without duplicates or late rows: "
        description += describe(unexplained[0])
    elif rows:
        description = (
            f"{len(rows)} groups differ, all explained: {duplicates} span rows landed twice (Kafka redelivery), "
            f"{late} after the mart was built"
        )
    else:
        description = f"{info['hours']} finished hours ({info['compared_from']} to {info['compared_to']}) agree"
    return AssetCheckResult(
        passed=not unexplained, severity=AssetCheckSeverity.WARN, description=description, metadata=metadata
    )
