-- Finished hours of rollups.llm_calls_1m against marts.mart_agent_metrics_1h, per hour, workspace,
-- service and model (the rollup's agent is the span's own, the mart's the trace's: not compared).
-- Hours [lo, hi) from rollup_vs_mart_window.sql; built: when the mart's newest part was written.
-- Returned: only the groups that differ, with
-- what explains a difference: span rows landed twice in raw (Kafka redelivery: count minus
-- distinct (trace_id, span_id)) and span rows landed after the mart was built.
WITH
    rollup AS (
        SELECT toStartOfHour(minute) AS hour, workspace_id, service, model,
               sum(calls) AS calls, sum(errors) AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
        FROM rollups.llm_calls_1m
        WHERE minute >= {lo:DateTime} AND minute < {hi:DateTime}
        GROUP BY hour, workspace_id, service, model
    ),
    mart AS (
        SELECT hour, workspace_id, service, model,
               sum(calls) AS calls, sum(errors) AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
        FROM marts.mart_agent_metrics_1h
        WHERE hour >= {lo:DateTime} AND hour < {hi:DateTime}
        GROUP BY hour, workspace_id, service, model
    ),
    differing AS (
        SELECT hour, workspace_id, service, model,
               r.calls AS rollup_calls, m.calls AS mart_calls,
               r.errors AS rollup_errors, m.errors AS mart_errors,
               r.input_tokens + r.output_tokens AS rollup_tokens, m.input_tokens + m.output_tokens AS mart_tokens
        FROM rollup AS r
        FULL OUTER JOIN mart AS m USING (hour, workspace_id, service, model)
        WHERE r.calls != m.calls OR r.errors != m.errors
           OR r.input_tokens != m.input_tokens OR r.output_tokens != m.output_tokens
    ),
    explained AS (
        SELECT toStartOfHour(start_time) AS hour, tenant AS workspace_id, service,
               count() - uniqExact(trace_id, span_id) AS duplicate_rows,
               countIf(ingested_at > {built:DateTime}) AS late_rows
        FROM raw.spans
        WHERE start_time >= {lo:DateTime} AND start_time < {hi:DateTime}
          AND (toStartOfHour(start_time), tenant, service) GLOBAL IN (SELECT hour, workspace_id, service FROM differing)
        GROUP BY hour, workspace_id, service
    )
SELECT
    toString(d.hour) AS hour, d.workspace_id AS workspace_id, d.service AS service, d.model AS model,
    d.rollup_calls AS rollup_calls, d.mart_calls AS mart_calls,
    d.rollup_errors AS rollup_errors, d.mart_errors AS mart_errors,
    d.rollup_tokens AS rollup_tokens, d.mart_tokens AS mart_tokens,
    e.duplicate_rows AS duplicate_rows, e.late_rows AS late_rows
FROM differing AS d
LEFT JOIN explained AS e ON e.hour = d.hour AND e.workspace_id = d.workspace_id AND e.service = d.service
ORDER BY d.hour, d.workspace_id, d.service, d.model
