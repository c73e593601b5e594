WITH
    (SELECT anyIf(daily_limit_usd, workspace_id = '*') FROM staging.workspace_spend_guardrails) AS default_limit,
    spend AS (
        SELECT workspace_id, toFloat64(sum(cost_usd)) AS cost_usd
        FROM rollups.agent_events_1m
        WHERE minute >= toStartOfDay(now('UTC')) AND event_type = 'llm_call'
        GROUP BY workspace_id
    ),
    own AS (
        SELECT workspace_id, any(daily_limit_usd) AS daily_limit_usd
        FROM staging.workspace_spend_guardrails
        WHERE workspace_id != '*'
        GROUP BY workspace_id
    )
SELECT workspace_id, if(limit_usd > 0, cost_usd / limit_usd, NULL) AS share_of_daily_limit
FROM (
    SELECT
        s.workspace_id AS workspace_id,
        s.cost_usd AS cost_usd,
        if(o.workspace_id != '', o.daily_limit_usd, default_limit) AS limit_usd  -- join_use_nulls = 0: '' unmatched
    FROM spend AS s
    LEFT ANY JOIN own AS o ON o.workspace_id = s.workspace_id
)
