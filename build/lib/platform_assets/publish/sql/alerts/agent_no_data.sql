SELECT count() AS events
FROM raw.agent_events
WHERE occurred_at >= now() - INTERVAL 5 MINUTE
