SELECT database, table, dateDiff('second', min(create_time), now()) AS oldest_mutation_age_s
FROM system.mutations
WHERE NOT is_done
GROUP BY database, table
