SELECT service, sum(errors) / sum(calls) AS error_rate
FROM marts.mart_agent_metrics_1m
WHERE minute >= now() - INTERVAL 5 MINUTE
GROUP BY service
