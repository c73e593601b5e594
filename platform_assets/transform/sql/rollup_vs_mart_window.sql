-- The hours the rollup_matches_mart check compares: from the first full hour of
-- rollups.llm_calls_1m (35-day TTL) to the last hour that had ended when the mart's newest part
-- was written; and how many of them the rollup has rows for.
WITH
    (SELECT max(modification_time) FROM system.parts
     WHERE database = 'marts' AND table = 'mart_agent_metrics_1h' AND active) AS built_at,
    (SELECT min(minute) FROM rollups.llm_calls_1m) AS first_minute,
    greatest(toStartOfHour(first_minute) + INTERVAL 1 HOUR, toStartOfHour(now()) - INTERVAL 34 DAY) AS lo,
    toStartOfHour(built_at) AS hi
SELECT
    lo, hi, built_at,
    (SELECT uniqExact(toStartOfHour(minute)) FROM rollups.llm_calls_1m WHERE minute >= lo AND minute < hi) AS hours
