{#- How every daily-partitioned incremental model (tag `daily`) replaces its window on an
    incremental run. The models run dbt-clickhouse's `insert_overwrite` strategy
    (dbt_project.yml); dbt-clickhouse 1.10's incremental materialization calls this macro by
    name for it, and a macro of the root project takes precedence over the adapter's own. The
    adapter's version replaces only the partitions present in the new rows, so a day whose
    input disappeared would keep its stale rows; this one also clears those days:

    1. the window's rows are built into a scratch table `<model>__window` in the model's
       database, created AS the target (same columns, engine, partition key, order and
       settings, as REPLACE PARTITION requires). A leftover of a failed run is dropped first;
    2. a row outside the window [window_min(), window_max()) fails the model, target untouched;
    3. each day of the window with rows in the scratch table replaces the target's day:
       ALTER TABLE target REPLACE PARTITION ID 'YYYYMMDD' FROM scratch;
    4. each day of the window with rows in the target and none in the scratch table is dropped
       (DROP PARTITION ID): the day became empty;
    5. the scratch table is dropped.
    A failed build (step 1) changes nothing in the target; the scratch table it leaves is
    dropped by the model's next run. REPLACE PARTITION is atomic per partition: a reader sees a
    day's old rows or its new rows, never an empty day, but a window of several days is
    swapped day by day, so for a moment some days can be new and others still old. The first
    build and `--full-refresh` do not come here (dbt-clickhouse creates the table from the
    whole SELECT); the contract check runs before, in the pre_hook check_window_contract(). -#}
{% macro clickhouse__incremental_insert_overwrite(existing_relation, partition_by, is_distributed=False) -%}
    {%- if is_distributed -%}
        {%- do exceptions.raise_compiler_error(
            "Model " ~ this ~ ": replacing a window of a Distributed table is not supported.") -%}
    {%- endif -%}
    {%- set scratch = existing_relation.incorporate(path={'identifier': existing_relation.identifier ~ '__window'}) -%}
    {%- set lo = window_partition_id(window_min()) -%}
    {%- set hi = window_partition_id(window_max()) -%}

    {%- call statement('drop_leftover_window_table') -%}
        DROP TABLE IF EXISTS {{ scratch }}
    {%- endcall -%}
    {%- call statement('create_window_table') -%}
        CREATE TABLE {{ scratch }} AS {{ existing_relation }}
    {%- endcall -%}
    {#- Same INSERT as the append strategy (the table's columns; max_partitions_per_insert_block
        from the model's query_settings), into the scratch table. -#}
    {%- call statement('main') -%}
        {{ clickhouse__insert_into(scratch, sql, config.get('contract').enforced) }}
    {%- endcall -%}

    {%- set built = window_partition_ids(scratch) -%}
    {%- set outside = built | reject('ge', lo) | list + built | select('ge', hi) | list -%}
    {%- if outside -%}
        {%- do run_query("DROP TABLE IF EXISTS " ~ scratch) -%}
        {%- do exceptions.raise_compiler_error(
            "Model " ~ this ~ " wrote rows outside its window [" ~ lo ~ ", " ~ hi ~ "): partitions "
            ~ outside | join(', ') ~ ". Nothing was replaced.") -%}
    {%- endif -%}
    {%- set emptied = window_partition_ids(existing_relation, lo, hi) | reject('in', built) | list -%}

    {%- if built -%}
        {%- call statement('replace_window_partitions') -%}
            ALTER TABLE {{ existing_relation }}
            {%- for id in built %}
                REPLACE PARTITION ID '{{ id }}' FROM {{ scratch }}{{ ',' if not loop.last }}
            {%- endfor %}
        {%- endcall -%}
    {%- endif -%}
    {%- if emptied -%}
        {%- call statement('drop_emptied_partitions') -%}
            ALTER TABLE {{ existing_relation }}
            {%- for id in emptied %}
                DROP PARTITION ID '{{ id }}'{{ ',' if not loop.last }}
            {%- endfor %}
        {%- endcall -%}
    {%- endif -%}
    {%- call statement('drop_window_table') -%}
        DROP TABLE {{ scratch }}
    {%- endcall -%}
{%- endmacro %}

{#- A window bound (an ISO date) as a day's partition id (toYYYYMMDD), which sorts as text. -#}
{% macro window_partition_id(day) -%}
    {{ return(modules.datetime.date.fromisoformat(day | trim).strftime('%Y%m%d')) }}
{%- endmacro %}

{#- The ids of the partitions with rows (active parts) of `relation`, sorted; only those in
    [lo, hi) when given. -#}
{% macro window_partition_ids(relation, lo=none, hi=none) -%}
    {%- set query -%}
        SELECT DISTINCT partition_id FROM system.parts
        WHERE active AND database = '{{ relation.schema }}' AND table = '{{ relation.identifier }}'
        {%- if lo is not none %} AND partition_id >= '{{ lo }}' AND partition_id < '{{ hi }}'{% endif %}
        ORDER BY partition_id
    {%- endset -%}
    {%- set ids = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- do ids.append(row[0]) -%}
    {%- endfor -%}
    {{ return(ids) }}
{%- endmacro %}
