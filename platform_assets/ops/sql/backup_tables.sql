-- Tables and views of the backed-up databases as the server reports them (views: NULL rows and bytes).
SELECT database, name, engine, total_rows, total_bytes
FROM system.tables
WHERE database IN {databases:Array(String)} AND NOT is_temporary
ORDER BY database, name
