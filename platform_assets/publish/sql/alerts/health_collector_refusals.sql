SELECT host, sum(delta) AS refusals_5m
FROM ops.collector_stats
WHERE counter = 'unavailable_responses' AND reported_at >= now() - INTERVAL 5 MINUTE
GROUP BY host
