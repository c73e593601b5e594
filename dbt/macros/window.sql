{#- The partition window of a run: days [min_date, max_date), UTC, passed by Dagster as
    `--vars '{min_date: ..., max_date: ...}'` (a partition key range). Without vars a run is an
    incremental run of recent days: min_date defaults to today (UTC, the run's start) minus
    var('recent_days') - 1, max_date stays open. Only a full refresh without vars
    (`dbt build --full-refresh`) covers every day: it rebuilds all history. -#}
{% macro window_min() -%}
    {%- if var('min_date', none) is not none -%}
        {{ var('min_date') }}
    {%- elif flags.FULL_REFRESH -%}
        1970-01-01
    {%- else -%}
        {{ (run_started_at.date() - modules.datetime.timedelta(days=var('recent_days') | int - 1)).isoformat() }}
    {%- endif -%}
{%- endmacro %}
{% macro window_max() -%}{{ var('max_date', '2199-12-31') }}{%- endmacro %}

{#- `col` (a Date or DateTime) falls in the window, widened by whole days on either side
    (models that look back, such as trailing 30-day active users, read earlier days). -#}
{#- A side with no bound is left open: widening the defaults would leave the Date range
    (toDate('1970-01-01') - 1 wraps to 2149-06-06, toDate('2199-12-31') is 2149-06-06 and
    + 1 wraps to 1970-01-01), which made a run without vars select nothing. The lower side is
    bounded unless a full refresh runs without min_date; the upper side only by max_date. -#}
{% macro in_window(col, days_before=0, days_after=0) -%}
    {% if var('min_date', none) is not none or not flags.FULL_REFRESH -%}
    toDate({{ col }}) >= toDate('{{ window_min() }}') - {{ days_before }}
    {%- else -%}
    1
    {%- endif %}
    AND {% if var('max_date', none) is not none -%}
    toDate({{ col }}) < toDate('{{ window_max() }}') + {{ days_after }}
    {%- else -%}
    1
    {%- endif %}
{%- endmacro %}

{#- pre_hook of every daily-partitioned incremental model. A model with an enforced contract
    (the marts) is checked (macros/contract.sql) on a run that replaces the window of an
    existing table (not a full refresh, which creates the table from the contract): a mismatch
    fails the run before anything is built or replaced. The window itself is replaced by the
    insert_overwrite strategy (macros/replace_window.sql). -#}
{% macro check_window_contract() -%}
    {%- if execute and not flags.FULL_REFRESH and config.get('contract').enforced -%}
        {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
        {%- if existing is not none -%}
            {%- do assert_contract(existing) -%}
        {%- endif -%}
    {%- endif -%}
    SELECT 1
{%- endmacro %}
