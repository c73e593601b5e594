SELECT signal, service, sumIf(n, minute >= now() - INTERVAL 5 MINUTE) AS recent_rows
FROM (
    SELECT 'traces' AS signal, service, minute, spans AS n FROM rollups.spans_1m
    WHERE minute >= now() - INTERVAL 1 DAY
    UNION ALL
    SELECT 'logs', service, minute, records FROM rollups.logs_1m
    WHERE minute >= now() - INTERVAL 1 DAY
    UNION ALL
    SELECT 'metrics', service, minute, points FROM rollups.metric_points_1m
    WHERE minute >= now() - INTERVAL 1 DAY
    UNION ALL
    SELECT 'agent_events', workspace_id, minute, events FROM rollups.agent_events_1m
    WHERE minute >= now() - INTERVAL 1 DAY
    UNION ALL
    SELECT 'product_events', workspace_id, minute, events FROM rollups.product_events_1m
    WHERE minute >= now() - INTERVAL 1 DAY
)
GROUP BY signal, service
