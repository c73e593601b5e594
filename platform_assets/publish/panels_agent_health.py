"""Agent health and spend dashboard: steps, failures and timeouts of agent runs, the top failing
prompts, model drift (output length, refusals), app endpoints' latency and error rate by version,
and each workspace's daily LLM spend against its guardrail and its own trailing 28 days.

Every panel reads a daily mart (definitions in each mart's YAML, dbt/models/marts/daily, and
docs/analytics.md). A daily percentile cannot be merged over days: panels over a range show the
requests-weighted mean of the daily percentiles and say so.
"""

from __future__ import annotations

from platform_assets.publish.panels import IN_WORKSPACE, WORKSPACE, DashboardSpec, PanelSpec, VariableSpec

_DAY = "$__dateFilter(day)"
HEALTH = "marts.mart_agent_health_daily"
SPEND = "marts.mart_workspace_spend_daily"

WORKSPACE_VARIABLE = VariableSpec(
    name="workspace",
    label="Workspace",
    sql=f"""SELECT DISTINCT workspace_id FROM {SPEND}
WHERE $__dateFilter(day)
ORDER BY workspace_id""",
)

AGENT_PANELS = (
    PanelSpec(
        key="agent_health",
        title="Agent runs, failures and steps",
        kind="table",
        sql=f"""SELECT agent_name, sum(runs) AS agent_runs, sum(failed_runs) / sum(runs) AS failure_rate,
       sum(steps) / sum(runs) AS avg_steps_per_run, sum(llm_steps) AS llm_calls, sum(tool_steps) AS tool_calls,
       sum(timeouts) AS timeouts
FROM {HEALTH}
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY agent_name
ORDER BY agent_runs DESC""",
        source=HEALTH,
        rows_filter=_DAY,
        description="A run is a trace with an invoke_agent span; a step is an LLM or tool call span of the run.",
        width=14,
    ),
    PanelSpec(
        key="timeouts_trend",
        title="Timed-out steps per day",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, agent_name, sum(timeouts) AS timeouts
FROM {HEALTH}
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY time, agent_name
ORDER BY time""",
        source=HEALTH,
        rows_filter=_DAY,
        width=10,
    ),
    PanelSpec(
        key="failures_by_error_type",
        title="Failed runs by error type",
        kind="barchart",
        sql=f"""SELECT error_type, sum(failures) AS failed_runs
FROM marts.mart_agent_failures_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY error_type
ORDER BY failed_runs DESC""",
        source="marts.mart_agent_failures_daily",
        rows_filter=_DAY,
        description="The error type of the run's agent span ('_OTHER' when it names none).",
    ),
    PanelSpec(
        key="top_failing_prompts",
        title="Top failing prompts",
        kind="table",
        sql=f"""SELECT prompt_hash, sum(calls) AS prompt_calls, sum(failures) AS failed_calls,
       sum(failures) / sum(calls) AS failure_rate, argMax(top_error_type, top_error_type_failures) AS top_error_type
FROM marts.mart_prompt_failures_daily
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY prompt_hash
HAVING failed_calls > 0
ORDER BY failed_calls DESC, failure_rate DESC
LIMIT 20""",
        source="marts.mart_prompt_failures_daily",
        rows_filter=_DAY,
        description="llm_call events by prompt_hash; top_error_type: the most frequent error of the prompt's day "
        "with the most failures of it.",
    ),
)

DRIFT_PANELS = (
    PanelSpec(
        key="output_tokens_by_model",
        title="Average output tokens per call, by model",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, model, sum(avg_output_tokens * calls) / sum(calls) AS mean_output_tokens
FROM marts.mart_model_drift_daily
WHERE {_DAY} AND workspace_id = {WORKSPACE}
GROUP BY time, model
ORDER BY time""",
        source="marts.mart_model_drift_daily",
        rows_filter=f"{_DAY} AND workspace_id = '__all__'",
        description="A change in a model's answer length over time (model drift).",
    ),
    PanelSpec(
        key="refusal_rate_by_model",
        title="Refusal rate by model",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, model, sum(refusals) / sum(calls) AS refusal_rate
FROM marts.mart_model_drift_daily
WHERE {_DAY} AND workspace_id = {WORKSPACE}
GROUP BY time, model
ORDER BY time""",
        source="marts.mart_model_drift_daily",
        rows_filter=f"{_DAY} AND workspace_id = '__all__'",
        unit="percentunit",
        description="Calls whose finish reasons include content_filter.",
    ),
)

ENDPOINT = "marts.mart_endpoint_latency_daily"
ENDPOINT_PANELS = (
    PanelSpec(
        key="endpoint_latency",
        title="Endpoint latency (p50 / p95, ms)",
        kind="table",
        sql=f"""SELECT service, route, sum(requests) AS request_count,
       sum(p50_ms * requests) / sum(requests) AS p50_ms, sum(p95_ms * requests) / sum(requests) AS p95_ms
FROM {ENDPOINT}
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY service, route
ORDER BY p95_ms DESC""",
        source=ENDPOINT,
        rows_filter=_DAY,
        description="Server spans with a route. Over several days: the requests-weighted mean of the daily exact "
        "percentiles.",
    ),
    PanelSpec(
        key="error_rate_by_version",
        title="Error rate by service version",
        kind="table",
        sql=f"""SELECT service, service_version, sum(requests) AS request_count, sum(errors) AS error_count,
       sum(errors) / sum(requests) AS error_rate
FROM {ENDPOINT}
WHERE {_DAY} AND {IN_WORKSPACE}
GROUP BY service, service_version
ORDER BY service, service_version""",
        source=ENDPOINT,
        rows_filter=_DAY,
        description="Share of server requests whose span has status ERROR (5xx), per service.version.",
    ),
)

SPEND_PANELS = (
    PanelSpec(
        key="spend_vs_guardrail",
        title="Daily LLM spend per workspace (USD)",
        kind="timeseries",
        format="time_series",
        sql=f"""SELECT toDateTime(day) AS time, workspace_id, cost_usd
FROM {SPEND}
WHERE {_DAY} AND {IN_WORKSPACE}
ORDER BY time""",
        source=SPEND,
        rows_filter=_DAY,
        unit="currencyUSD",
        description="llm_call events' cost per UTC day (mart_cost_daily). The guardrails are the seed "
        "workspace_spend_guardrails; the alert rule platform-spend-guardrail fires on today's spend over it.",
        width=14,
    ),
    PanelSpec(
        key="spend_anomalies",
        title="Days over the guardrail or unusual (|z| >= 3)",
        kind="table",
        sql=f"""SELECT day, workspace_id, cost_usd, daily_limit_usd, over_guardrail, trailing_28d_mean_usd,
       spend_z_score
FROM {SPEND}
WHERE {_DAY} AND {IN_WORKSPACE} AND (over_guardrail OR abs(spend_z_score) >= 3)
ORDER BY day DESC, workspace_id""",
        source=SPEND,
        rows_filter=f"{_DAY} AND (over_guardrail OR abs(spend_z_score) >= 3)",
        description="z-score of the day's spend against the workspace's trailing 28 days (the day excluded; none "
        "before 7 days of history).",
        width=10,
    ),
)

DASHBOARD = DashboardSpec(
    uid="platform-agent-health",
    title="Agent health and spend",
    description="Agent runs, failing prompts, model drift, app endpoints and workspace spend from the daily marts.",
    tags=("platform", "agents"),
    panels=AGENT_PANELS + DRIFT_PANELS + ENDPOINT_PANELS + SPEND_PANELS,
    variables=(WORKSPACE_VARIABLE,),
)
