-- LLM cost per UTC day and model in [{first}, {last}] (llm_call events, every workspace and user).
SELECT day, model, sum(cost_usd) AS model_cost_usd, sum(calls) AS model_calls
FROM marts.mart_cost_daily
WHERE day BETWEEN {first:Date} AND {last:Date}
GROUP BY day, model
ORDER BY day, model
