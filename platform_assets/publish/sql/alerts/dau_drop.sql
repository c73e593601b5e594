SELECT 1 - argMaxIf(dau, day, day = today() - 1) / argMaxIf(dau, day, day = today() - 2) AS drop
FROM marts.mart_active_users_daily
WHERE workspace_id = '__all__' AND day >= today() - 2
