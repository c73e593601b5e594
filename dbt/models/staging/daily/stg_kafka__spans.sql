{{ config(
    partition_by='toYYYYMMDD(span_date)',
    order_by='(workspace_id, span_date, service, trace_id, span_id)',
) }}
-- One row per span (trace_id, span_id), deduplicated, with OpenTelemetry GenAI attributes
-- flattened to columns, each under its semantic-convention name or a listed alias, on the span
-- or else its resource (otel_attribute(), the `otel_attribute_aliases` var). agent_name is the
-- trace's `gen_ai.agent.name` (set on the agent's root span) carried to every span of the trace; spans of the days either side of the window
-- are read for it only, so a trace that crosses midnight keeps its agent on both days.
-- The attributes are extracted before the dedup (no Map column is carried through it), and
-- the agent comes from a join on a per-trace table of the spans that name one (no sort of every
-- span by trace): same rows as a window function, a fraction of the memory (docs/benchmarks.md).
-- Cost: the span's own reported cost when it carries one ('reported'); else, for an LLM call,
-- its tokens times the model_prices row of its model in effect on the span's day, the row with
-- the latest effective_from on or before it ('price_table'); an LLM call with no such row (an
-- unknown model, or a day before the model's first row) costs 0 ('unpriced'). input_tokens
-- include the cache reads (cached_input_tokens), as in the GenAI conventions: those are priced
-- at the cached-input price, the rest at the input price; output_tokens include the reasoning
-- tokens. route and service_version come from raw.spans' own columns when it has them (else
-- or where empty, from the attribute maps). span_kind is the OTLP SpanKind number (2: SERVER).
-- finish_reasons is gen_ai.response.finish_reasons as the span carries it (an array flattened
-- to text); an LLM call is a refusal when it contains 'content_filter' (the safety filter).
{%- set raw_columns = [] -%}
{%- if execute -%}
    {%- set raw_columns = adapter.get_columns_in_relation(source('kafka', 'spans')) | map(attribute='name') | list -%}
{%- endif %}
WITH
spans AS (
    SELECT
        trace_id,
        span_id,
        parent_span_id,
        tenant AS workspace_id,
        env,
        service,
        {% if 'route' in raw_columns -%}
        coalesce(nullIf(route, ''), {{ otel_attribute('route') }})
        {%- else -%}
        {{ otel_attribute('route') }}
        {%- endif %} AS route_value,
        {% if 'service_version' in raw_columns -%}
        coalesce(nullIf(service_version, ''), {{ otel_attribute('service_version', span_map='resource_attributes', resource_map=none) }})
        {%- else -%}
        {{ otel_attribute('service_version', span_map='resource_attributes', resource_map=none) }}
        {%- endif %} AS service_version_value,
        operation,
        kind AS span_kind,
        {{ otel_attribute('finish_reasons', resource_map=none) }} AS finish_reasons,
        {{ otel_attribute('gen_ai_operation') }} AS gen_ai_operation,
        {{ otel_attribute('model') }} AS model,
        {{ otel_attribute('provider') }} AS provider,
        toUInt32OrZero({{ otel_attribute('input_tokens') }}) AS input_tokens,
        toUInt32OrZero({{ otel_attribute('output_tokens') }}) AS output_tokens,
        toUInt32OrZero({{ otel_attribute('cached_input_tokens') }}) AS cached_input_tokens,
        toUInt32OrZero({{ otel_attribute('reasoning_tokens') }}) AS reasoning_tokens,
        -- a number of USD from 0 to 1e6 (no single call costs more; the marts sum costs as
        -- Decimal128(18)); anything else counts as not reported
        toFloat64OrNull({{ otel_attribute('cost_usd') }}) AS cost_attribute,
        if(cost_attribute BETWEEN 0 AND 1e6, cost_attribute, NULL) AS reported_cost_usd,
        {{ otel_attribute('tool_name') }} AS tool_name,
        -- An LLM call: a chat operation, tokens, or a model named on the span itself (a model set
        -- on the resource names every span of the program, agent and tool spans included).
        gen_ai_operation IN ('chat', 'text_completion', 'generate_content')
            OR input_tokens > 0 OR output_tokens > 0
            OR {{ otel_attribute('model', resource_map=none) }} != '' AS is_llm_call,
        -- ERROR status; with the status unset (0), a `status` attribute 'error' or an `error`
        -- attribute true (a boolValue arrives as '1') on the span itself. An OK status stays OK.
        status_code = 2
            OR (status_code = 0
                AND (lower({{ otel_attribute('status', resource_map=none) }}) = 'error'
                     OR lower({{ otel_attribute('error', resource_map=none) }}) IN ('true', '1'))) AS is_error,
        if(is_error, coalesce(nullIf({{ otel_attribute('error_type') }}, ''), status_message), '') AS error_type,
        start_time,
        end_time,
        toDate(start_time) AS span_date,
        duration_ms
    FROM {{ source('kafka', 'spans') }}
    WHERE {{ in_window('start_time') }}
    LIMIT 1 BY trace_id, span_id
),
agents AS (
    SELECT trace_id, max(agent) AS agent_name
    FROM (
        SELECT trace_id, {{ otel_attribute('agent_name') }} AS agent
        FROM {{ source('kafka', 'spans') }}
        WHERE {{ in_window('start_time', days_before=1, days_after=1) }}
    )
    WHERE agent != ''
    GROUP BY trace_id
),
prices AS (
    SELECT
        model,
        effective_from,
        usd_per_input_token,
        usd_per_cached_input_token,
        usd_per_output_token,
        1 AS has_price  -- 0 on a span without a price row (join_use_nulls is 0: defaults)
    FROM {{ ref('model_prices') }}
),
joined AS (
    SELECT
        s.trace_id AS trace_id,
        s.span_id AS span_id,
        s.parent_span_id AS parent_span_id,
        s.workspace_id AS workspace_id,
        s.env AS env,
        s.service AS service,
        s.route_value AS route_value,
        s.service_version_value AS service_version_value,
        s.operation AS operation,
        s.gen_ai_operation AS gen_ai_operation,
        s.model AS model,
        s.provider AS provider,
        s.input_tokens AS input_tokens,
        s.output_tokens AS output_tokens,
        s.cached_input_tokens AS cached_input_tokens,
        s.reasoning_tokens AS reasoning_tokens,
        s.tool_name AS tool_name,
        s.is_llm_call AS is_llm_call,
        s.is_error AS is_error,
        s.error_type AS error_type,
        s.start_time AS start_time,
        s.end_time AS end_time,
        s.span_date AS span_date,
        s.duration_ms AS duration_ms,
        s.span_kind AS span_kind,
        s.finish_reasons AS finish_reasons,
        a.agent_name AS agent_name,
        multiIf(
            s.reported_cost_usd IS NOT NULL, 'reported',
            NOT s.is_llm_call, '',
            p.has_price = 1, 'price_table',
            'unpriced'
        ) AS cost_source,
        -- cache reads are part of input_tokens: at most all of them are priced as cached
        least(s.cached_input_tokens, s.input_tokens) AS cached_priced,
        multiIf(
            cost_source = 'reported', assumeNotNull(s.reported_cost_usd),
            cost_source = 'price_table',
            (s.input_tokens - cached_priced) * p.usd_per_input_token
                + cached_priced * p.usd_per_cached_input_token
                + s.output_tokens * p.usd_per_output_token,
            0
        ) AS cost_usd,
        if(cost_source = 'price_table', p.effective_from, NULL) AS price_effective_from
    FROM spans AS s
    LEFT ANY JOIN agents AS a ON a.trace_id = s.trace_id  -- no agent: '' (join_use_nulls is 0 by default)
    -- the model's row with the latest effective_from on or before the span's day
    ASOF LEFT JOIN prices AS p ON p.model = s.model AND s.span_date >= p.effective_from
)
SELECT
    trace_id,
    span_id,
    parent_span_id,
    parent_span_id = '' AS is_root,
    workspace_id,
    env,
    service,
    route_value AS route,
    service_version_value AS service_version,
    operation,
    gen_ai_operation,
    agent_name,
    model,
    provider,
    input_tokens,
    output_tokens,
    cached_input_tokens,
    reasoning_tokens,
    cost_usd,
    cost_source,
    price_effective_from,
    tool_name,
    is_llm_call,
    is_error,
    error_type,
    start_time,
    end_time,
    span_date,
    duration_ms,
    span_kind,
    finish_reasons,
    is_llm_call AND positionCaseInsensitive(finish_reasons, 'content_filter') > 0 AS is_refusal
FROM joined
