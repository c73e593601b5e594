{{ config(
    partition_by='toYYYYMMDD(day)',
    order_by='(workspace_id, day)',
) }}
-- Grain: one row per day (UTC) and workspace with LLM calls (a row in mart_cost_daily). The
-- day's cost against the guardrail seed (the workspace's row, else '*') and against the
-- workspace's trailing 28 days D-28 .. D-1 (from its first spend day among them on, a day
-- without spend as 0): mean, sample stddev and z-score. Reads the 28 days before the window,
-- so a run of one day gives the same row as a full build.
WITH
daily AS (
    -- each day's cost, Decimal sums so the total does not depend on the order of the rows
    SELECT day, workspace_id, toFloat64(sum(toDecimal128(cost_usd, 18))) AS cost_usd
    FROM {{ ref('mart_cost_daily') }}
    WHERE {{ in_window('day', days_before=28) }}
    GROUP BY day, workspace_id
),
prior_spend AS (
    -- each spend day is a baseline day of the 28 days after it
    SELECT day + k AS scored_day, workspace_id, arraySort(groupArray(cost_usd)) AS prior_costs, min(day) AS first_day
    FROM daily
    ARRAY JOIN range(1, 29) AS k
    WHERE {{ in_window('scored_day') }}
    GROUP BY scored_day, workspace_id
),
limits AS (
    SELECT workspace_id, daily_limit_usd AS own_limit, 1 AS has_own
    FROM {{ ref('workspace_spend_guardrails') }}
    WHERE workspace_id != '*'
),
default_limit AS (
    SELECT '*' AS default_key, daily_limit_usd AS default_limit, 1 AS has_default
    FROM {{ ref('workspace_spend_guardrails') }}
    WHERE workspace_id = '*'
),
scored AS (
    SELECT
        d.day AS day,
        d.workspace_id AS workspace_id,
        d.cost_usd AS cost_usd,
        CAST(multiIf(l.has_own = 1, l.own_limit, g.has_default = 1, g.default_limit, NULL) AS Nullable(Float64))
            AS daily_limit_usd,
        -- from the first spend day of D-28 .. D-1 to D - 1 (0 without spend in those days)
        toUInt64(if(empty(p.prior_costs), 0, dateDiff('day', p.first_day, d.day))) AS baseline_days,
        -- the spend days of the baseline (sorted: the float sums do not depend on the order the
        -- rows were read in), then its days without spend as zeros
        arrayConcat(p.prior_costs, arrayWithConstant(baseline_days - length(p.prior_costs), 0.)) AS baseline
    FROM (SELECT day, workspace_id, cost_usd, '*' AS default_key FROM daily WHERE {{ in_window('day') }}) AS d
    LEFT ANY JOIN prior_spend AS p ON p.scored_day = d.day AND p.workspace_id = d.workspace_id
    LEFT ANY JOIN limits AS l ON l.workspace_id = d.workspace_id  -- join_use_nulls is 0: has_own 0
    LEFT ANY JOIN default_limit AS g ON g.default_key = d.default_key
)
SELECT
    day,
    workspace_id,
    cost_usd,
    daily_limit_usd,
    CAST(ifNull(cost_usd > daily_limit_usd, 0) AS Bool) AS over_guardrail,
    baseline_days,
    if(baseline_days = 0, NULL, arrayAvg(baseline)) AS trailing_28d_mean_usd,
    if(baseline_days < 2, NULL, arrayReduce('stddevSampStable', baseline)) AS trailing_28d_stddev_usd,
    if(baseline_days < 7 OR ifNull(trailing_28d_stddev_usd, 0) = 0, NULL,
       (cost_usd - trailing_28d_mean_usd) / trailing_28d_stddev_usd) AS spend_z_score
FROM scored
