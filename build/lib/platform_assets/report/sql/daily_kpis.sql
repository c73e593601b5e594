-- One row per UTC day in [{first}, {last}]: the report's headline figures, read from the marts.
-- A figure is NULL where its mart has no row for the day (join_use_nulls), so "no data" and
-- "zero" stay apart. Rates are NULL where their denominator is 0.
WITH days AS (
    SELECT toDate({first:Date}) + number AS day
    FROM numbers(toUInt64(dateDiff('day', {first:Date}, {last:Date}) + 1))
),
users AS (
    SELECT day, dau, wau, mau
    FROM marts.mart_active_users_daily
    WHERE workspace_id = '__all__' AND day BETWEEN {first:Date} AND {last:Date}
),
llm AS (
    SELECT day, sum(calls) AS llm_calls, sum(cost_usd) AS llm_cost_usd
    FROM marts.mart_llm_daily
    WHERE day BETWEEN {first:Date} AND {last:Date}
    GROUP BY day
),
errs AS (
    SELECT
        day,
        sum(spans) AS span_count,
        if(span_count = 0, NULL, sum(error_spans) / span_count) AS call_error_rate,
        if(sum(traces) = 0, NULL, sum(error_traces) / sum(traces)) AS trace_error_rate
    FROM marts.mart_trace_errors_daily
    WHERE day BETWEEN {first:Date} AND {last:Date}
    GROUP BY day
),
runs AS (
    SELECT day, sum(requests) AS agent_runs, 1 - sum(errors) / agent_runs AS agent_run_success_rate
    FROM marts.mart_slo_daily
    WHERE day BETWEEN {first:Date} AND {last:Date}
    GROUP BY day
),
tools AS (
    SELECT toDate(hour) AS day, sum(calls) AS tool_calls, sum(successes) / tool_calls AS tool_success_rate
    FROM marts.mart_tool_reliability_hourly
    WHERE toDate(hour) BETWEEN {first:Date} AND {last:Date}
    GROUP BY day
),
orders AS (
    SELECT day, orders AS order_count, toFloat64(revenue_usd) AS revenue, toFloat64(net_revenue_usd) AS net_revenue
    FROM marts.mart_orders_daily
    WHERE day BETWEEN {first:Date} AND {last:Date}
),
mrr AS (
    SELECT day, toFloat64(mrr_usd) AS mrr, active_subscriptions AS active
    FROM marts.mart_mrr_daily
    WHERE day BETWEEN {first:Date} AND {last:Date}
)
SELECT
    d.day AS day,
    u.dau AS dau, u.wau AS wau, u.mau AS mau,
    l.llm_calls AS llm_calls, l.llm_cost_usd AS llm_cost_usd,
    e.span_count AS spans, e.call_error_rate AS call_error_rate, e.trace_error_rate AS trace_error_rate,
    r.agent_runs AS agent_runs, r.agent_run_success_rate AS agent_run_success_rate,
    t.tool_calls AS tool_calls, t.tool_success_rate AS tool_success_rate,
    o.order_count AS orders, o.revenue AS revenue_usd, o.net_revenue AS net_revenue_usd,
    m.mrr AS mrr_usd, m.active AS active_subscriptions
FROM days AS d
LEFT JOIN users AS u ON u.day = d.day
LEFT JOIN llm AS l ON l.day = d.day
LEFT JOIN errs AS e ON e.day = d.day
LEFT JOIN runs AS r ON r.day = d.day
LEFT JOIN tools AS t ON t.day = d.day
LEFT JOIN orders AS o ON o.day = d.day
LEFT JOIN mrr AS m ON m.day = d.day
ORDER BY day
SETTINGS join_use_nulls = 1
