{{ config(
    partition_by='toYYYYMMDD(toDate(minute))',
    order_by='(workspace_id, minute, service, model, token_type)',
) }}
-- Grain: one row per minute (of the histogram point, UTC), workspace, service, model, provider,
-- token type and attribute set, from the gen_ai.client.token.usage histogram: tokens = the sum
-- of the recorded token counts (the histogram's sum), records = how many were recorded (its
-- count). `attributes` is the point's whole attribute set (metric attributes are low-cardinality
-- by design), key-sorted so the same set from two processes is one row: dashboards split tokens
-- by any of its keys.
WITH points AS (
    SELECT
        toStartOfMinute(time_unix) AS minute,
        workspace_id,
        service,
        model,
        provider,
        token_type,
        mapSort(attributes) AS attribute_set,
        sum AS token_sum,
        count AS n
    FROM {{ ref('stg_kafka__metric_histograms') }}
    WHERE {{ in_window('point_date') }}
      AND metric_name = 'gen_ai.client.token.usage'
      AND count > 0
)
SELECT
    minute,
    workspace_id,
    service,
    model,
    provider,
    token_type,
    attribute_set AS attributes,
    toUInt64(round(sum(token_sum))) AS tokens,  -- integer counts, exact in Float64 below 2^53
    sum(n) AS records
FROM points
GROUP BY minute, workspace_id, service, model, provider, token_type, attribute_set
