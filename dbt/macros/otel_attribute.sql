{#
  The value of a span attribute by its staging column name, under any of the names listed for
  that column in the `otel_attribute_aliases` var (dbt_project.yml): the span's own attributes
  first (every name, in the listed order), then its resource's (resource_map=none: the span's
  only; span_map='resource_attributes', resource_map=none: the resource's only); '' when none
  is set.
  Both maps are Map(String, String) in raw.spans (ints arrive as strings in OTLP JSON).
#}
{% macro otel_attribute(column, span_map='attributes', resource_map='resource_attributes') -%}
    {%- set aliases = var('otel_attribute_aliases')[column] -%}
    coalesce(
        {%- for map in [span_map, resource_map] if map %}
        {%- for name in aliases %}
        nullIf({{ map }}['{{ name }}'], ''),
        {%- endfor %}
        {%- endfor %}
        ''
    )
{%- endmacro %}
