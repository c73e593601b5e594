-- LLM call spans on the day {day}: per minute with calls and model, the p95 latency (the highest
-- of the minute's rows when several workspaces, services or agents called the model). Minute
-- percentiles cannot be merged into an hourly or daily one, so the chart shows them as they are.
SELECT minute, model, sum(calls) AS model_calls, max(p95_latency_ms) AS worst_p95_ms
FROM marts.mart_agent_metrics_1m
WHERE toDate(minute) = {day:Date}
GROUP BY minute, model
ORDER BY minute, model
