-- Dashboard queries on the marts, as Grafana panels would run them, for benchmarks/bench_transform.py.
-- One query per block: a `-- name: <name>` line, then the SQL (no trailing semicolon needed).
-- Parameters (ClickHouse query parameters, bound by clickhouse-connect; Grafana's time range
-- and workspace variable):
--   {from_day:Date}     first day of the range (inclusive)
--   {to_day:Date}       end of the range (exclusive): the last 30 days are [to_day - 30, to_day)
--   {workspace:String}  one workspace id, or '' for all workspaces
-- Blocks named `raw__<name>` are NOT panels: they are the benchmark's baseline, the same
-- question as panel <name> answered from raw/staging tables instead of the marts, and must
-- return the same rows.

-- name: dau_wau_mau
-- DAU/WAU/MAU and stickiness per day ('__all__' = users across every workspace).
SELECT day, dau, wau, mau, stickiness
FROM marts.mart_active_users_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND workspace_id = if({workspace:String} = '', '__all__', {workspace:String})
ORDER BY day

-- name: signup_funnel
-- Signup funnel per day (the funnel is not per workspace).
SELECT day, step, step_name, users, conversion_from_previous, conversion_from_first, median_seconds_from_previous
FROM marts.mart_signup_funnel_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
ORDER BY day, step

-- name: retention_matrix
-- Weekly signup cohorts of the last 12 weeks, by week offset.
SELECT cohort_week, week_offset, cohort_users, retained_users, retention_rate
FROM marts.mart_retention_weekly
WHERE cohort_week >= toMonday({to_day:Date} - 84) AND cohort_week < {to_day:Date}
ORDER BY cohort_week, week_offset

-- name: orders_mrr
-- Orders, revenue and MRR per day.
SELECT o.day AS day, o.orders AS orders, o.revenue_usd AS revenue_usd, o.refunds_usd AS refunds_usd,
       o.net_revenue_usd AS net_revenue_usd, m.mrr_usd AS mrr_usd, m.active_subscriptions AS active_subscriptions
FROM marts.mart_orders_daily AS o
LEFT JOIN (
    SELECT day, mrr_usd, active_subscriptions FROM marts.mart_mrr_daily
    WHERE day >= {from_day:Date} AND day < {to_day:Date}
) AS m ON m.day = o.day
WHERE o.day >= {from_day:Date} AND o.day < {to_day:Date}
ORDER BY day

-- name: llm_latency_by_model
-- LLM latency per model and day: p50/p90 as the mart keeps them (mart_llm_daily has no p95;
-- the per-minute p95 is in mart_agent_metrics_1m). Exact for one workspace; for all
-- workspaces the calls-weighted mean of the workspaces' percentiles.
SELECT day, model, sum(calls) AS llm_calls,
       sum(p50_latency_ms * calls) / llm_calls AS p50_ms,
       sum(p90_latency_ms * calls) / llm_calls AS p90_ms,
       sum(calls * success_rate) / llm_calls AS success
FROM marts.mart_llm_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY day, model
ORDER BY day, model

-- name: error_rates
-- Error rate per call (span) and per trace, by day.
SELECT day, sum(spans) AS spans, sum(error_spans) AS error_spans, error_spans / spans AS call_error_rate,
       sum(traces) AS traces, sum(error_traces) AS error_traces, if(traces = 0, 0, error_traces / traces) AS trace_error_rate
FROM marts.mart_trace_errors_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY day
ORDER BY day

-- name: cost_by_model_workspace
-- LLM cost and calls by workspace and model over the range.
SELECT workspace_id, model, sum(calls) AS calls, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, round(sum(cost_usd), 6) AS cost_usd
FROM marts.mart_llm_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY workspace_id, model
ORDER BY cost_usd DESC, workspace_id, model

-- name: cost_top_users
-- The 20 users (keyed hashes) with the highest LLM cost over the range.
SELECT user_hash, sum(calls) AS calls, round(sum(cost_usd), 6) AS cost_usd
FROM marts.mart_cost_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY user_hash
ORDER BY cost_usd DESC, user_hash
LIMIT 20

-- name: tool_reliability_hourly
-- Tool calls, failures, timeouts and success rate by hour and tool.
SELECT hour, tool_name, sum(calls) AS calls, sum(failures) AS failures, sum(timeouts) AS timeouts,
       sum(successes) AS successes, successes / calls AS success_rate, max(p95_latency_ms) AS worst_workspace_p95_latency_ms
FROM marts.mart_tool_reliability_hourly
WHERE hour >= toDateTime({from_day:Date}, 'UTC') AND hour < toDateTime({to_day:Date}, 'UTC')
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY hour, tool_name
ORDER BY hour, tool_name

-- name: slo_burn
-- Agent-run SLO (99%) per day: requests, errors, success rate and burn rate.
SELECT day, sum(requests) AS requests, sum(errors) AS errors, (requests - errors) / requests AS success_rate,
       (errors / requests) / (1 - 0.99) AS burn_rate
FROM marts.mart_slo_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY day
ORDER BY day

-- name: agent_metrics_24h
-- LLM calls per minute over the last 24 hours of the range: calls, errors, worst p95, cost.
SELECT minute, sum(calls) AS calls, sum(errors) AS errors, max(p95_latency_ms) AS max_p95_latency_ms,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM marts.mart_agent_metrics_1m
WHERE minute >= toDateTime({to_day:Date}, 'UTC') - INTERVAL 24 HOUR AND minute < toDateTime({to_day:Date}, 'UTC')
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY minute
ORDER BY minute

-- name: llm_cost_per_active_user
-- LLM spend per product-active user, by day (all workspaces: total spend / summed DAU).
SELECT day, sum(llm_cost_usd) AS llm_cost_usd, sum(active_users) AS active_users,
       if(active_users = 0, NULL, llm_cost_usd / active_users) AS llm_cost_per_active_user_usd,
       sum(cost_of_active_users_usd) AS cost_of_active_users_usd
FROM marts.mart_llm_cost_per_active_user_daily
WHERE day >= {from_day:Date} AND day < {to_day:Date}
  AND ({workspace:String} = '' OR workspace_id = {workspace:String})
GROUP BY day
ORDER BY day

-- name: raw__dau_wau_mau
-- Baseline: DAU/WAU/MAU from the raw client events (duplicates do not change distinct
-- counts) and the app's server-side events (staging view over the CDC replica).
WITH user_days AS (
    SELECT DISTINCT toDate(occurred_at) AS d, actor_id AS u
    FROM raw.product_events
    WHERE actor_id != ''
      AND occurred_at >= toDateTime64({from_day:Date} - 29, 3, 'UTC') AND occurred_at < toDateTime64({to_day:Date}, 3, 'UTC')
      AND ({workspace:String} = '' OR workspace_id = {workspace:String})
    UNION DISTINCT
    SELECT DISTINCT event_date AS d, user_hash AS u
    FROM staging.stg_app__events
    WHERE user_hash != '' AND event_date >= {from_day:Date} - 29 AND event_date < {to_day:Date}
      AND {workspace:String} IN ('', 'app')
)
SELECT d + k AS day, uniqExactIf(u, k = 0) AS dau, uniqExactIf(u, k < 7) AS wau, uniqExact(u) AS mau, dau / mau AS stickiness
FROM user_days
ARRAY JOIN range(30) AS k
WHERE day >= {from_day:Date} AND day < {to_day:Date}
GROUP BY day
ORDER BY day

-- name: raw__llm_latency_by_model
-- Baseline: the same percentiles per workspace from the deduplicated agent events, then the
-- same calls-weighted combination across workspaces.
SELECT day, model, sum(calls) AS llm_calls,
       sum(p50 * calls) / llm_calls AS p50_ms,
       sum(p90 * calls) / llm_calls AS p90_ms,
       sum(ok) / llm_calls AS success
FROM (
    SELECT event_date AS day, workspace_id, model, provider, count() AS calls,
           quantileExactInclusive(0.5)(latency_ms) AS p50, quantileExactInclusive(0.9)(latency_ms) AS p90,
           countIf(is_success) AS ok
    FROM staging.stg_kafka__agent_events
    WHERE event_type = 'llm_call' AND event_date >= {from_day:Date} AND event_date < {to_day:Date}
      AND ({workspace:String} = '' OR workspace_id = {workspace:String})
    GROUP BY day, workspace_id, model, provider
)
GROUP BY day, model
ORDER BY day, model

-- name: raw__error_rates
-- Baseline: call and trace error rates from the deduplicated spans (a trace counts on the
-- day and workspace of its root span, as in the mart).
SELECT day, sum(n_spans) AS spans, sum(n_error_spans) AS error_spans, error_spans / spans AS call_error_rate,
       sum(n_traces) AS traces, sum(n_error_traces) AS error_traces, if(traces = 0, 0, error_traces / traces) AS trace_error_rate
FROM (
    SELECT span_date AS day, count() AS n_spans, countIf(is_error) AS n_error_spans,
           toUInt64(0) AS n_traces, toUInt64(0) AS n_error_traces
    FROM staging.stg_kafka__spans
    WHERE span_date >= {from_day:Date} AND span_date < {to_day:Date}
      AND ({workspace:String} = '' OR workspace_id = {workspace:String})
    GROUP BY day
    UNION ALL
    SELECT toDate(head_start) AS day, toUInt64(0), toUInt64(0), count(), countIf(has_error)
    FROM (
        SELECT trace_id,
               argMin(workspace_id, (NOT is_root, start_time, span_id)) AS head_workspace,
               argMin(start_time, (NOT is_root, start_time, span_id)) AS head_start,
               max(is_error) AS has_error
        FROM staging.stg_kafka__spans
        WHERE span_date >= {from_day:Date} - 1 AND span_date < {to_day:Date} + 1
        GROUP BY trace_id
    )
    WHERE toDate(head_start) >= {from_day:Date} AND toDate(head_start) < {to_day:Date}
      AND ({workspace:String} = '' OR head_workspace = {workspace:String})
    GROUP BY day
)
GROUP BY day
ORDER BY day
