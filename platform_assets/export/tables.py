"""Which tables are exported, and the column that puts each row on a UTC day."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey


@dataclass(frozen=True)
class ExportTable:
    database: str  # "raw" or "marts"; also the upstream asset key's first part
    name: str
    day_expr: str  # SQL giving the row's UTC day (the table's partition column, so reads prune)

    @property
    def qualified(self) -> str:
        return f"`{self.database}`.`{self.name}`"

    @property
    def upstream_key(self) -> AssetKey:
        return AssetKey([self.database, self.name])

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey(["export", self.database, self.name])

    @property
    def path(self) -> str:
        """Folder of the table under the export prefix (raw/agent_events, marts/mart_llm_daily)."""
        return f"{self.database}/{self.name}"


# Raw tables: the day is that of the event (or span start), as in their PARTITION BY.
RAW_TABLES = (
    ExportTable("raw", "agent_events", "toDate(occurred_at)"),
    ExportTable("raw", "product_events", "toDate(occurred_at)"),
    ExportTable("raw", "spans", "toDate(start_time)"),
)

# Marts: every daily-partitioned mart, with the day column its dbt YAML names as the
# partition key (the whole-table rebuilds mart_retention_weekly, mart_retention_l7_daily and
# mart_feature_adoption_weekly have no day partition and are not exported per day).
MART_TABLES = (
    ExportTable("marts", "fct_product_events", "event_date"),
    ExportTable("marts", "fct_sessions", "session_date"),
    ExportTable("marts", "mart_active_users_daily", "day"),
    ExportTable("marts", "mart_agent_metrics_1m", "toDate(minute)"),
    ExportTable("marts", "mart_agent_metrics_1h", "toDate(hour)"),
    ExportTable("marts", "mart_llm_daily", "day"),
    ExportTable("marts", "mart_cost_daily", "day"),
    ExportTable("marts", "mart_orders_daily", "day"),
    ExportTable("marts", "mart_mrr_daily", "day"),
    ExportTable("marts", "mart_signup_funnel_daily", "day"),
    ExportTable("marts", "mart_slo_daily", "day"),
    ExportTable("marts", "mart_tool_reliability_hourly", "toDate(hour)"),
    ExportTable("marts", "mart_trace_errors_daily", "day"),
    ExportTable("marts", "mart_llm_cost_per_active_user_daily", "day"),
    ExportTable("marts", "mart_session_length_daily", "day"),
    ExportTable("marts", "mart_paths_daily", "day"),
    ExportTable("marts", "mart_breakdown_daily", "day"),
    ExportTable("marts", "mart_endpoint_latency_daily", "day"),
    ExportTable("marts", "mart_agent_health_daily", "day"),
    ExportTable("marts", "mart_agent_failures_daily", "day"),
    ExportTable("marts", "mart_prompt_failures_daily", "day"),
    ExportTable("marts", "mart_model_drift_daily", "day"),
    ExportTable("marts", "mart_workspace_spend_daily", "day"),
)

EXPORT_TABLES = RAW_TABLES + MART_TABLES
BY_NAME = {f"{t.database}.{t.name}": t for t in EXPORT_TABLES}


def table(qualified: str) -> ExportTable:
    """``raw.agent_events`` -> its ExportTable; an unknown name fails listing the known ones."""
    try:
        return BY_NAME[qualified]
    except KeyError:
        raise KeyError(f"{qualified!r} is not exported; choose from {', '.join(BY_NAME)}") from None
