SELECT database, table, max(elapsed) AS longest_merge_s
FROM system.merges
GROUP BY database, table
