SELECT (sumIf(cost_usd, minute >= now() - INTERVAL 5 MINUTE) / 5)
     / nullIf(sumIf(cost_usd, minute < now() - INTERVAL 5 MINUTE) / (7 * 24 * 60), 0) AS cost_ratio
FROM marts.mart_agent_metrics_1m
WHERE minute >= now() - INTERVAL 7 DAY - INTERVAL 5 MINUTE
