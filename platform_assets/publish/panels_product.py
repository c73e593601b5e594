"""Product analytics dashboard: active users, signup funnel, retention, sessions, orders, MRR.

The daily marts serve finished days (and today as of the last hourly run); two live panels read
the streaming rollup rollups.product_events_1m: today's active users and events per minute by
type over the recent window (panels.RECENT_START: yesterday and today, UTC).
"""

from __future__ import annotations

from platform_assets.publish.panels import (
    BUCKET_MINUTES,
    IN_WORKSPACE,
    RANGE_IN_RECENT,
    WORKSPACE,
    DashboardSpec,
    PanelSpec,
    VariableSpec,
    recent_minutes,
)

ROLLUP = "rollups.product_events_1m"
_TODAY = "minute >= toStartOfDay(now('UTC'))"  # the current UTC day, whatever the server's time zone

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    sql=f"""SELECT DISTINCT workspace_id FROM (
    SELECT workspace_id FROM marts.mart_active_users_daily WHERE workspace_id != '__all__' AND $__dateFilter(day)
    UNION ALL
    SELECT workspace_id FROM {ROLLUP} WHERE {RANGE_IN_RECENT} AND {recent_minutes()}
)
ORDER BY workspace_id""",
)

_DAY = "$__dateFilter(day)"

PANELS = (
    PanelSpec(
        key="active_users",
        title="DAU / WAU / MAU",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, dau AS DAU, wau AS WAU, mau AS MAU
FROM marts.mart_active_users_daily
WHERE {_DAY} AND workspace_id = {WORKSPACE}
ORDER BY time""",
        source="marts.mart_active_users_daily",
        rows_filter=f"{_DAY} AND workspace_id = '__all__'",
        description="Distinct users per UTC day, trailing 7 days and trailing 30 days.",
        width=16,
    ),
    PanelSpec(
        key="stickiness",
        title="Stickiness (DAU / MAU, last day)",
        kind="stat",
        sql=f"""SELECT argMax(stickiness, day) AS stickiness
FROM marts.mart_active_users_daily
WHERE {_DAY} AND workspace_id = {WORKSPACE}""",
        source="marts.mart_active_users_daily",
        rows_filter=f"{_DAY} AND workspace_id = '__all__'",
        unit="percentunit",
        width=8,
    ),
    PanelSpec(
        key="active_users_live",
        title="Active users today (live)",
        kind="stat",
        sql=f"""SELECT uniqCombined64Merge(users) AS active_users
FROM {ROLLUP}
WHERE {_TODAY} AND {IN_WORKSPACE}""",
        source=ROLLUP,
        rows_filter=_TODAY,
        description="Distinct users with a product event since 00:00 UTC, from the streaming rollup "
        "(uniqCombined64: within about 1 %), whatever the time range.",
        width=6,
    ),
    PanelSpec(
        key="events_per_minute_live",
        title="Product events per minute by type (live)",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT time, event_type, events / {BUCKET_MINUTES} AS events_per_minute
FROM (
    SELECT $__timeInterval(minute) AS time, event_type, sum(events) AS events
    FROM {ROLLUP}
    WHERE {RANGE_IN_RECENT} AND {recent_minutes()} AND {IN_WORKSPACE}
    GROUP BY time, event_type
)
ORDER BY time""",
        source=ROLLUP,
        rows_filter=recent_minutes(),
        unit="short",
        description="Events per minute of each time bucket, today and yesterday (UTC) only: from the streaming "
        "rollup, counted as they land (the daily marts keep the deduplicated days).",
        width=18,
    ),
    PanelSpec(
        key="signup_funnel",
        title="Signup funnel",
        kind="barchart",
        sql=f"""SELECT step_name, sum(users) AS step_users,
       sum(users) / first_value(sum(users)) OVER (ORDER BY step) AS conversion_from_first
FROM marts.mart_signup_funnel_daily
WHERE {_DAY}
GROUP BY step, step_name
ORDER BY step""",
        source="marts.mart_signup_funnel_daily",
        rows_filter=_DAY,
        description="Users per step, by the day of their /signup view (all workspaces: the funnel is per user).",
    ),
    PanelSpec(
        key="retention",
        title="Weekly retention by signup cohort",
        kind="table",
        sql="SELECT cohort_week, any(cohort_users) AS users, "
        + ", ".join(f"maxIf(retention_rate, week_offset = {w}) AS `week {w}`" for w in range(9))
        + """
FROM marts.mart_retention_weekly
WHERE $__dateFilter(cohort_week)
GROUP BY cohort_week
ORDER BY cohort_week""",
        source="marts.mart_retention_weekly",
        rows_filter="$__dateFilter(cohort_week)",
        unit="percentunit",
        description="Share of each cohort with a product event in week N after signup (all workspaces).",
    ),
    PanelSpec(
        key="sessions",
        title="Sessions per day",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(session_date) AS time, count() AS sessions,
       quantileExactInclusive(0.5)(duration_s) AS median_duration_s
FROM marts.fct_sessions
WHERE $__dateFilter(session_date) AND {IN_WORKSPACE}
GROUP BY time
ORDER BY time""",
        source="marts.fct_sessions",
        rows_filter="$__dateFilter(session_date)",
    ),
    PanelSpec(
        key="orders",
        title="Orders: gross, refunds, net (USD)",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, revenue_usd AS gross, refunds_usd AS refunds, net_revenue_usd AS net
FROM marts.mart_orders_daily
WHERE {_DAY}
ORDER BY time""",
        source="marts.mart_orders_daily",
        rows_filter=_DAY,
        unit="currencyUSD",
        description="App orders (CDC), all workspaces: the app's orders carry no workspace.",
    ),
    PanelSpec(
        key="mrr",
        title="MRR (USD) and active subscriptions",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, mrr_usd AS MRR, active_subscriptions
FROM marts.mart_mrr_daily
WHERE {_DAY}
ORDER BY time""",
        source="marts.mart_mrr_daily",
        rows_filter=_DAY,
        description="State at the end of each day, from each subscription's current plan.",
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-product-analytics",
    title="Product analytics",
    description="Active users, signup funnel, retention, sessions, orders and MRR from the marts.",
    tags=("platform", "product"),
    panels=PANELS,
    variables=(WORKSPACE_VARIABLE,),
)
