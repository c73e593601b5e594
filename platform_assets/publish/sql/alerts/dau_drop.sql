SELECT
    workspace_id,
    1 - uniqCombined64MergeIf(users, minute >= now() - INTERVAL 1 DAY)
        / uniqCombined64MergeIf(users, minute < now() - INTERVAL 1 DAY) AS drop
FROM rollups.product_events_1m
WHERE minute >= now() - INTERVAL 2 DAY
GROUP BY workspace_id
HAVING uniqCombined64MergeIf(users, minute < now() - INTERVAL 1 DAY) >= 20
