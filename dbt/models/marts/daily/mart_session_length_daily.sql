{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, workspace_id, bucket)',
) }}
-- Grain: one row per day, workspace and session-length bucket (1..8), every bucket for every
-- day and workspace with a session. Buckets are fixed: lower bounds 0, 10, 30, 60, 180, 600,
-- 1800, 3600 seconds (inclusive), each up to the next bound (exclusive), the last open.
WITH
    [0, 10, 30, 60, 180, 600, 1800, 3600] AS lower_bounds,
    ['0-10s', '10-30s', '30-60s', '1-3m', '3-10m', '10-30m', '30-60m', '60m+'] AS labels,
sessions AS (
    SELECT
        session_date AS day,
        workspace_id,
        toUInt8(arrayCount(b -> b <= duration_s, lower_bounds)) AS bucket
    FROM {{ ref('fct_sessions') }}
    WHERE {{ in_window('session_date') }}
),
per_bucket AS (
    SELECT day, workspace_id, bucket, count() AS sessions
    FROM sessions
    GROUP BY day, workspace_id, bucket
),
grid AS (
    SELECT day, workspace_id, count() AS total, arrayJoin(arrayMap(i -> toUInt8(i), range(1, 9))) AS bucket
    FROM sessions
    GROUP BY day, workspace_id
)
SELECT
    g.day AS day,
    g.workspace_id AS workspace_id,
    g.bucket AS bucket,
    labels[g.bucket] AS bucket_label,
    toUInt32(lower_bounds[g.bucket]) AS lower_bound_s,
    if(g.bucket = length(lower_bounds), NULL, toUInt32(lower_bounds[g.bucket + 1])) AS upper_bound_s,
    coalesce(p.sessions, 0) AS sessions,
    sessions / g.total AS share
FROM grid AS g
LEFT JOIN per_bucket AS p ON p.day = g.day AND p.workspace_id = g.workspace_id AND p.bucket = g.bucket
