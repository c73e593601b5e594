WITH
    toHour(now('UTC')) AS this_hour,
    toStartOfDay(now('UTC')) AS today,
    per_model AS (
        SELECT
            workspace_id, model, toDate(minute) AS day,
            minute >= now() - INTERVAL 5 MINUTE AS recent,
            sum(reported_cost_usd) AS reported,
            sum(unreported_input_tokens) AS input_tokens,
            sum(unreported_cached_input_tokens) AS cached_tokens,
            sum(unreported_output_tokens) AS output_tokens
        FROM rollups.llm_calls_1m
        WHERE (minute >= now() - INTERVAL 5 MINUTE)
           OR (minute >= today - INTERVAL 7 DAY AND minute < today AND toHour(minute) = this_hour)
        GROUP BY workspace_id, model, day, recent
    ),
    priced AS (
        SELECT
            c.workspace_id AS workspace_id, c.recent AS recent,
            toFloat64(c.reported) + c.input_tokens * p.usd_per_input_token
                + c.cached_tokens * p.usd_per_cached_input_token + c.output_tokens * p.usd_per_output_token AS cost_usd
        FROM per_model AS c
        ASOF LEFT JOIN staging.model_prices AS p ON p.model = c.model AND c.day >= p.effective_from
    )
SELECT workspace_id, (sumIf(cost_usd, recent) / 5) / (sumIf(cost_usd, NOT recent) / (7 * 60)) AS cost_ratio
FROM priced
GROUP BY workspace_id
HAVING sumIf(cost_usd, NOT recent) > 0
