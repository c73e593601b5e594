SELECT model, sum(p95_latency_ms * calls) / sum(calls) AS p95_ms
FROM marts.mart_agent_metrics_1m
WHERE minute >= now() - INTERVAL 5 MINUTE
GROUP BY model
