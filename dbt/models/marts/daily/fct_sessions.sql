{{ config(
    partition_by='toYYYYMMDD(session_date)',
    order_by='(workspace_id, session_date, user_hash, session_start)',
) }}
-- Grain: one row per session: a user's run of product events in one workspace with no gap
-- over 30 minutes, kept on the day it began. Events are read from the day before the window
-- (a run that began then is not a session starting in the window) to the day after it (a
-- session that began on the window's last day runs on past midnight). A run is cut at the
-- end of the day after the day it began: later events of the same unbroken run belong to no
-- session, so every day's sessions depend on that day and its neighbours only.
WITH events AS (
    SELECT workspace_id, user_hash, occurred_at
    FROM {{ ref('fct_product_events') }}
    WHERE user_hash != '' AND {{ in_window('event_date', days_before=1, days_after=1) }}
),
flagged AS (
    SELECT
        workspace_id, user_hash, occurred_at,
        -- the first event of a user has no predecessor: lagInFrame gives 1970, a huge gap
        dateDiff('millisecond', lagInFrame(occurred_at) OVER w, occurred_at) > 1800000 AS is_start
    FROM events
    WINDOW w AS (PARTITION BY workspace_id, user_hash ORDER BY occurred_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
),
chained AS (
    SELECT
        workspace_id, user_hash, occurred_at,
        sum(is_start) OVER (
            PARTITION BY workspace_id, user_hash ORDER BY occurred_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS chain
    FROM flagged
),
started AS (
    SELECT
        workspace_id, user_hash, occurred_at,
        min(occurred_at) OVER (PARTITION BY workspace_id, user_hash, chain) AS chain_start
    FROM chained
)
SELECT
    lower(hex(substring(SHA256(concat(workspace_id, '|', user_hash, '|', toString(chain_start))), 1, 16))) AS session_id,
    workspace_id,
    user_hash,
    chain_start AS session_start,
    max(occurred_at) AS session_end,
    toDate(chain_start) AS session_date,
    count() AS events,
    dateDiff('millisecond', chain_start, max(occurred_at)) / 1000 AS duration_s
FROM started
WHERE occurred_at < toDateTime64(toDate(chain_start) + 2, 3, 'UTC')
  AND {{ in_window('chain_start') }}
GROUP BY workspace_id, user_hash, chain_start
