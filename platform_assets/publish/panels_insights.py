"""Product insights dashboard: feature adoption by signup cohort, L7 retention, session length,
paths, and the country and device breakdowns. Every panel reads a mart (built daily and hourly);
their definitions are in each mart's YAML (dbt/models/marts) and docs/analytics.md.
"""

from __future__ import annotations

from platform_assets.publish.panels import IN_WORKSPACE, WORKSPACE, DashboardSpec, PanelSpec, VariableSpec

_DAY = "$__dateFilter(day)"
BREAKDOWN = "marts.mart_breakdown_daily"

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    sql="""SELECT DISTINCT workspace_id FROM marts.mart_breakdown_daily
WHERE $__dateFilter(day)
ORDER BY workspace_id""",
)


def _breakdown(key: str, column: str, label: str, description: str) -> PanelSpec:
    """Events and user-days of mart_breakdown_daily by one of its dimensions."""
    return PanelSpec(
        key=key,
        title=f"Events and user-days by {label}",
        kind="barchart",
        sql=f"""SELECT {column}, sum(events) AS events, sum(active_users) AS user_days
FROM {BREAKDOWN}
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY {column}
ORDER BY events DESC""",
        source=BREAKDOWN,
        rows_filter=_DAY,
        description=description,
    )


PANELS = (
    PanelSpec(
        key="feature_adoption",
        title="Feature adoption by signup cohort week",
        kind="table",
        sql=f"""SELECT cohort_week, feature, cohort_users, adopters, adoption_rate
FROM marts.mart_feature_adoption_weekly
WHERE $__dateFilter(cohort_week) AND workspace_id = {WORKSPACE}
ORDER BY cohort_week, feature""",
        source="marts.mart_feature_adoption_weekly",
        rows_filter="$__dateFilter(cohort_week) AND workspace_id = '__all__'",
        description="Share of each signup cohort (ISO week of signup) that used the feature at least once since "
        "signing up. Cohort weeks whose Monday falls in the time range.",
        width=14,
    ),
    PanelSpec(
        key="retention_l7",
        title="L7 retention by signup day",
        kind="timeseries",
        format="time_series",
        sql="""SELECT toDateTime(signup_date) AS time, retention_rate AS `L7 retention`
FROM marts.mart_retention_l7_daily
WHERE $__dateFilter(signup_date) AND is_complete
ORDER BY time""",
        source="marts.mart_retention_l7_daily",
        rows_filter="$__dateFilter(signup_date) AND is_complete",
        unit="percentunit",
        description="Share of the users who signed up that day with a product event on any of days 1-7 after it "
        "(day 0 not counted). Cohorts younger than 8 days are left out until their window closes. All workspaces.",
        width=10,
    ),
    PanelSpec(
        key="session_length",
        title="Session length distribution",
        kind="barchart",
        sql=f"""SELECT bucket_label, sum(sessions) AS sessions
FROM marts.mart_session_length_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY bucket, bucket_label
ORDER BY bucket""",
        source="marts.mart_session_length_daily",
        rows_filter=_DAY,
        description="Sessions (fct_sessions: no gap over 30 minutes) by length, first to last event, in fixed buckets.",
    ),
    PanelSpec(
        key="top_paths",
        title="Most common next step",
        kind="table",
        sql=f"""SELECT step, next_step, sum(transitions) AS times,
       sum(transitions) / sum(sum(transitions)) OVER (PARTITION BY step) AS share_of_step
FROM marts.mart_paths_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY step, next_step
ORDER BY times DESC
LIMIT 50""",
        source="marts.mart_paths_daily",
        rows_filter=_DAY,
        description="A user's next event in the same session after a page (its path) or event; share_of_step is "
        "the share of all transitions out of that step.",
    ),
    _breakdown(
        "countries",
        "country",
        "country",
        "Country from the app's users table (CDC); 'unknown' for anonymous visitors and actors without "
        "an account. user_days: distinct users per day, summed over the days.",
    ),
    _breakdown(
        "devices",
        "device_type",
        "device type",
        "device_type from the client event's context (docs/ingest.md); 'unknown' when not sent and for "
        "server-side events.",
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-product-insights",
    title="Product insights",
    description="Feature adoption, L7 retention, session length, paths, countries and devices from the marts.",
    tags=("platform", "product"),
    panels=PANELS,
    variables=(WORKSPACE_VARIABLE,),
)
