SELECT user, if(query_kind = '', 'Other', query_kind) AS kind, quantile(0.95)(query_duration_ms) AS p95_ms
FROM system.query_log
WHERE event_date >= toDate(now() - INTERVAL 10 MINUTE) AND event_time >= now() - INTERVAL 10 MINUTE
  AND type = 'QueryFinish'
GROUP BY user, kind
