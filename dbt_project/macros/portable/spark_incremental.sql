{#- The incremental models' `delete+insert` strategy and their row deletes on Spark (Spark mode).

    Spark's Parquet tables (no Delta or Iceberg jars can be downloaded here) have no DELETE and
    no MERGE, and a statement may not overwrite a table it reads. So on Spark a delete+insert run
    writes what the table keeps (its rows whose key the run did not recompute) plus the recomputed
    rows into a staging table, `insert overwrite`s the model from it and drops it; a delete writes
    the rows that stay. The result is the table DuckDB's delete+insert leaves (same key matching:
    `=`, so a null key is never replaced), and the model SQL is the same on every engine. The cost
    is a rewrite of the table per run (Spark's Parquet writer, no recomputation of the history);
    models whose recomputed rows are whole partitions could use `insert_overwrite` instead.
    These override dbt-spark's own macros of the same names, which accept only append, merge
    (Delta/Iceberg/Hudi), insert_overwrite and microbatch; the others behave as dbt-spark's. -#}

{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- set accepted = ['append', 'merge', 'insert_overwrite', 'microbatch', 'delete+insert'] -%}
    {%- if raw_strategy not in accepted -%}
        {%- do exceptions.raise_compiler_error(
            "Invalid incremental strategy provided: " ~ raw_strategy ~ "\nExpected one of: " ~ accepted | join(', ')
        ) -%}
    {%- endif -%}
    {%- if raw_strategy == 'merge' and file_format not in ['delta', 'iceberg', 'hudi'] -%}
        {%- do exceptions.raise_compiler_error(
            "Invalid incremental strategy provided: merge\nYou can only choose this strategy when file_format is "
            ~ "set to 'delta' or 'iceberg' or 'hudi'"
        ) -%}
    {%- endif -%}
    {%- if raw_strategy in ['insert_overwrite', 'microbatch'] and target.endpoint -%}
        {%- do exceptions.raise_compiler_error(
            "Invalid incremental strategy provided: " ~ raw_strategy ~ "\nYou cannot use this strategy when "
            ~ "connecting via endpoint"
        ) -%}
    {%- endif -%}
    {%- do return(raw_strategy) -%}
{% endmacro %}


{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'delete+insert' -%}
        {{ spark_delete_insert_sql(source, target, unique_key) }}
    {%- elif strategy == 'append' -%}
        {{ get_insert_into_sql(source, target) }}
    {%- elif strategy in ['insert_overwrite', 'microbatch'] -%}
        {%- if strategy == 'microbatch' and not config.get('partition_by') -%}
            {%- do exceptions.raise_compiler_error("dbt-spark 'microbatch' incremental strategy requires a `partition_by` config.") -%}
        {%- endif -%}
        {{ get_insert_overwrite_sql(source, target, existing) }}
    {%- elif strategy == 'merge' -%}
        {{ get_merge_sql(target, source, unique_key, dest_columns=none, incremental_predicates=incremental_predicates) }}
    {%- else -%}
        {%- do exceptions.raise_compiler_error("No known SQL for the incremental strategy provided: " ~ strategy) -%}
    {%- endif -%}
{% endmacro %}


{#- Rewrite `target` as `select_sql` (its columns, in order) through a staging table, which is
    dropped after. Returns the statement that finishes it, for the caller's `main` statement. -#}
{% macro spark_rewrite_table(target, select_sql) %}
    {%- set staged = target.incorporate(path={"identifier": target.identifier ~ '__dbt_rewrite'}) -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- do run_query('drop table if exists ' ~ staged) -%}
    {%- do run_query('create table ' ~ staged ~ ' using parquet as ' ~ select_sql) -%}
    {%- do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ staged) -%}
    {%- do run_query('drop table if exists ' ~ staged) -%}
    {%- do return('refresh table ' ~ target) -%}
{% endmacro %}


{% macro spark_delete_insert_sql(source, target, unique_key) %}
    {%- if not unique_key -%}
        {%- do exceptions.raise_compiler_error("delete+insert on Spark needs a unique_key (" ~ target ~ ")") -%}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- set matched -%}
        {%- for key in keys %}recomputed.{{ key }} = kept.{{ key }}{% if not loop.last %} and {% endif %}{% endfor -%}
    {%- endset -%}
    {%- set select_sql -%}
        select {{ columns }} from {{ target }} as kept
        where not exists (select 1 from {{ source }} as recomputed where {{ matched }})
        union all
        select {{ columns }} from {{ source }}
    {%- endset -%}
    {{ spark_rewrite_table(target, select_sql) }}
{% endmacro %}


{#- `delete from relation where condition` on every engine (with `with_sql`, CTEs the condition
    reads). On Spark it rewrites the table without those rows and renders nothing: a hook that
    renders nothing is not run. -#}
{% macro delete_rows_where(relation, condition, with_sql='') -%}
    {{ return(adapter.dispatch('delete_rows_where')(relation, condition, with_sql)) }}
{%- endmacro %}

{% macro default__delete_rows_where(relation, condition, with_sql) -%}
    {{ with_sql }}
    delete from {{ relation }}
    where {{ condition }}
{%- endmacro %}

{% macro spark__delete_rows_where(relation, condition, with_sql) -%}
    {%- if execute -%}
        {%- set select_sql -%}
            {{ with_sql }}
            select * from {{ relation }} where not coalesce(({{ condition }}), false)
        {%- endset -%}
        {%- do run_query(spark_rewrite_table(relation, select_sql)) -%}
    {%- endif -%}
{%- endmacro %}
