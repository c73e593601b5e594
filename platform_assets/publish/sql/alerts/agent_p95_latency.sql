SELECT model, quantilesDDMerge(0.005, 0.5, 0.95, 0.99)(latency_ms)[2] AS p95_ms
FROM rollups.llm_calls_1m
WHERE minute >= now() - INTERVAL 5 MINUTE
GROUP BY model
HAVING sum(calls) >= 10
