{#- The q-quantile (0 <= q <= 1) of an explicit-bucket histogram, estimated the way Prometheus'
    histogram_quantile() does: `buckets` are the counts per bucket (not cumulative), one more
    than `bounds`, the buckets' upper bounds ((-inf, b1], (b1, b2], ..., (bn, +inf)).
    rank = q x total; the estimate lies in the first bucket whose cumulative count reaches the
    rank, by linear interpolation between that bucket's lower and upper bound (as if its
    observations were spread evenly); the first bucket's lower bound is taken as 0 (latencies,
    token counts), or it returns b1 when b1 <= 0; a rank in the +inf bucket returns the highest
    finite bound. NULL without observations or without a finite bound. Exact only to within the
    bucket that holds the true quantile. Callers merge buckets only across points with
    identical bounds. -#}
{% macro histogram_quantile(q, buckets, bounds) -%}
    {%- set total = 'arraySum(' ~ buckets ~ ')' -%}
    {%- set rank = '(' ~ q ~ ' * ' ~ total ~ ')' -%}
    {%- set cum = 'arrayCumSum(' ~ buckets ~ ')' -%}
    {%- set i = 'arrayFirstIndex(c -> c >= ' ~ rank ~ ', ' ~ cum ~ ')' -%}
    {%- set lower = 'if(' ~ i ~ ' = 1, 0, ' ~ bounds ~ '[' ~ i ~ ' - 1])' -%}
    multiIf(
        length({{ bounds }}) = 0 OR {{ total }} = 0, NULL,
        {{ i }} > length({{ bounds }}), {{ bounds }}[length({{ bounds }})],
        {{ i }} = 1 AND {{ bounds }}[1] <= 0, {{ bounds }}[1],
        {{ lower }} + ({{ bounds }}[{{ i }}] - {{ lower }})
            * (({{ rank }} - if({{ i }} = 1, 0, {{ cum }}[{{ i }} - 1])) / {{ buckets }}[{{ i }}])
    )
{%- endmacro %}

{#- Latency per minute from an OpenTelemetry duration histogram (stg_kafka__metric_histograms,
    one delta per point): the body shared by mart_route_latency_1m (http.server.request.duration)
    and mart_llm_latency_1m (gen_ai.client.operation.duration).
    - The minute is that of the point's time_unix: observations count in the minute the SDK
      collected them (the end of their export interval), not the minute they happened.
    - Bucket counts are summed element-wise over the minute's points with the same bounds only:
      explicit_bounds is part of the grain, so two bucket layouts never mix.
    - Percentiles come from the merged buckets (histogram_quantile above); they are never
      averaged. Over longer ranges merge bucket_counts again (the dashboards do).
    - An error is a point whose attributes carry a 5xx http.response.status_code or an
      error.type. Points with no observation in their interval (cumulative series that did not
      move) add no row. -#}
{% macro histogram_latency_1m(metric_name, dimensions, calls_column) %}
WITH points AS (
    SELECT
        toStartOfMinute(time_unix) AS minute,
        workspace_id,
        service,
        {%- for d in dimensions %}
        {{ d }},
        {%- endfor %}
        explicit_bounds AS bounds,
        count AS n,
        sum AS total_seconds,
        bucket_counts AS buckets,
        status_code >= 500 OR error_type != '' AS failed
    FROM {{ ref('stg_kafka__metric_histograms') }}
    WHERE {{ in_window('point_date') }}
      AND metric_name = '{{ metric_name }}'
      AND count > 0
),
merged AS (
    SELECT
        minute,
        workspace_id,
        service,
        {%- for d in dimensions %}
        {{ d }},
        {%- endfor %}
        bounds,
        sum(n) AS calls,
        sumIf(n, failed) AS failures,
        sum(total_seconds) AS seconds,
        sumForEach(buckets) AS merged
    FROM points
    GROUP BY minute, workspace_id, service, {% for d in dimensions %}{{ d }}, {% endfor %}bounds
)
SELECT
    minute,
    workspace_id,
    service,
    {%- for d in dimensions %}
    {{ d }},
    {%- endfor %}
    calls AS {{ calls_column }},
    failures AS errors,
    1 - failures / calls AS success_rate,
    seconds AS duration_sum_seconds,
    merged AS bucket_counts,
    bounds AS explicit_bounds,
    {{ histogram_quantile(0.5, 'merged', 'bounds') }} AS p50_seconds,
    {{ histogram_quantile(0.95, 'merged', 'bounds') }} AS p95_seconds,
    {{ histogram_quantile(0.99, 'merged', 'bounds') }} AS p99_seconds
FROM merged
{% endmacro %}
