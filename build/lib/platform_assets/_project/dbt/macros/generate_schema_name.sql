{#- Use the configured schema as the ClickHouse database name as is (no target prefix), so
    models land in `staging` and `marts` in every environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
