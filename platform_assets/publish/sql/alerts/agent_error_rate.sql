SELECT service, sum(errors) / sum(calls) AS error_rate
FROM rollups.llm_calls_1m
WHERE minute >= now() - INTERVAL 5 MINUTE
GROUP BY service
HAVING sum(calls) >= 10
