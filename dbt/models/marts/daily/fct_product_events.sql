{{ config(
    partition_by='toYYYYMMDD(event_date)',
    order_by='(workspace_id, event_date, user_hash, occurred_at)',
) }}
-- Grain: one row per product event, from both sources: client-side events sent through the
-- collector (Kafka, deduplicated in staging) and server-side events in the app database (CDC).
SELECT
    event_id, 'kafka' AS source_system, event_type, occurred_at, event_date, workspace_id,
    session_id, user_hash, path, feature
FROM {{ ref('stg_kafka__product_events') }}
WHERE {{ in_window('event_date') }}
UNION ALL
SELECT
    event_id, 'app' AS source_system, event_type, occurred_at, event_date,
    '{{ var("app_workspace_id") }}' AS workspace_id, '' AS session_id, user_hash, path, feature
FROM {{ ref('stg_app__events') }}
WHERE {{ in_window('event_date') }}
