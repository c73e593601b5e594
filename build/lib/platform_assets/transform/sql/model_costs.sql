-- Per dbt node, the summed cost of its finished statements in one dbt invocation. dbt writes the
-- node and invocation ids into a comment on every statement (query-comment in dbt_project.yml);
-- the marker parameter is the invocation id as it appears there (see cost.model_costs).
SELECT
    extract(query, '"node_id": "([^"]+)"') AS node_id,
    count() AS queries,
    sum(read_rows) AS read_rows,
    sum(read_bytes) AS read_bytes,
    sum(written_rows) AS written_rows,
    sum(query_duration_ms) AS duration_ms,
    max(memory_usage) AS peak_memory_bytes
FROM system.query_log
WHERE type = 'QueryFinish'
  AND event_date >= today() - 1
  AND position(query, {marker:String}) > 0
GROUP BY node_id
