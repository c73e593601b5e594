SELECT database, table, count() AS inactive_parts
FROM system.parts
WHERE NOT active
GROUP BY database, table
