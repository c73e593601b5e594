-- Summed cost of each dbt node's finished statements in one invocation: dbt's query comment
-- carries the node id, {marker} is '"invocation_id": "<id>"' (see cost.model_costs).
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
