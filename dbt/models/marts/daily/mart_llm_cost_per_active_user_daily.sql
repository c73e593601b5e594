{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(day, workspace_id)',
) }}
-- Grain: one row per day (UTC) and workspace with LLM spend or product activity that day.
-- Joins what agents cost (LLM calls) with how many people used the product: the spend per
-- active user, and how much of the spend came from users who were active in the product.
WITH cost AS (
    SELECT day, workspace_id, sum(calls) AS llm_calls, sum(cost_usd) AS llm_cost_usd,
           uniqExactIf(user_hash, user_hash != '') AS llm_users
    FROM {{ ref('mart_cost_daily') }}
    WHERE {{ in_window('day') }}
    GROUP BY day, workspace_id
),
active AS (
    SELECT day, workspace_id, dau AS active_users
    FROM {{ ref('mart_active_users_daily') }}
    WHERE {{ in_window('day') }} AND workspace_id != '__all__'
      AND dau > 0  -- rows with no activity that day (kept there for wau/mau) are not activity
),
active_cost AS (
    -- spend of users who also had a product event that day in the same workspace
    SELECT c.day AS day, c.workspace_id AS workspace_id, sum(c.cost_usd) AS cost_of_active_users_usd
    FROM {{ ref('mart_cost_daily') }} AS c
    INNER JOIN (
        SELECT DISTINCT event_date AS day, workspace_id, user_hash
        FROM {{ ref('fct_product_events') }}
        WHERE {{ in_window('event_date') }} AND user_hash != ''
    ) AS p ON c.day = p.day AND c.workspace_id = p.workspace_id AND c.user_hash = p.user_hash
    WHERE {{ in_window('c.day') }}
    GROUP BY day, workspace_id
)
SELECT
    if(cost.day = toDate(0), active.day, cost.day) AS day,
    if(cost.workspace_id = '', active.workspace_id, cost.workspace_id) AS workspace_id,
    cost.llm_calls AS llm_calls,
    cost.llm_cost_usd AS llm_cost_usd,
    cost.llm_users AS llm_users,
    active.active_users AS active_users,
    if(active.active_users = 0, NULL, cost.llm_cost_usd / active.active_users) AS llm_cost_per_active_user_usd,
    ifNull(ac.cost_of_active_users_usd, 0) AS cost_of_active_users_usd
FROM cost
FULL OUTER JOIN active ON cost.day = active.day AND cost.workspace_id = active.workspace_id
LEFT JOIN active_cost AS ac
    ON ac.day = if(cost.day = toDate(0), active.day, cost.day)
   AND ac.workspace_id = if(cost.workspace_id = '', active.workspace_id, cost.workspace_id)
