-- Which of the databases a backup covers exist on this server (raw: clickhouse_ddl/001; marts: dbt).
SELECT name
FROM system.databases
WHERE name IN {databases:Array(String)}
ORDER BY name
