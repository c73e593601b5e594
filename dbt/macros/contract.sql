{#- The enforced contract of an incremental mart, checked on every incremental run.
    dbt-clickhouse 1.10 checks a contract only when it creates a table (the first build, a full
    refresh: CREATE TABLE with the YAML's columns and types after comparing them with the
    SELECT). An incremental run into an existing table fills a scratch table `AS` the target and
    swaps its partitions in (macros/replace_window.sql) without comparing the SELECT with the
    YAML. check_window_contract() (macros/window.sql), the pre_hook, calls this macro before the
    window is built or replaced, so a run whose SELECT or table no longer matches the YAML fails
    with the window's rows still in place:
    - the SELECT against the YAML: the adapter's own contract check (names, count, types);
    - the existing table against the YAML: the same names and types (a table built before the
      contract changed needs `--full-refresh`). -#}
{% macro assert_contract(relation) -%}
    {%- do get_assert_columns_equivalent(sql) -%}
    {%- set declared = {} -%}
    {%- for col in model['columns'].values() -%}
        {%- do declared.update({col['name']: col['data_type']}) -%}
    {%- endfor -%}
    {%- set actual = {} -%}
    {%- for col in adapter.get_columns_in_relation(relation) -%}
        {%- do actual.update({col.name: col.data_type}) -%}
    {%- endfor -%}
    {%- if declared != actual -%}
        {%- set diffs = [] -%}
        {%- for name in (declared.keys() | list + actual.keys() | list) | unique | sort -%}
            {%- if declared.get(name) != actual.get(name) -%}
                {%- do diffs.append(name ~ ' (contract: ' ~ declared.get(name, 'none') ~ ', table: ' ~ actual.get(name, 'none') ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do exceptions.raise_compiler_error(
            "Table " ~ relation ~ " does not match the enforced contract of " ~ model['name'] ~ ": "
            ~ diffs | join(', ') ~ ". Rebuild it with --full-refresh.") -%}
    {%- endif -%}
{%- endmacro %}
