{#- The incremental models' `delete+insert` strategy and their row deletes on Spark (Spark mode).

    Spark's Parquet tables (no Delta or Iceberg jars can be downloaded here) have no DELETE and
    no MERGE, and a statement may not overwrite a table it reads. So on Spark a delete+insert run
    writes what the table keeps (its rows whose key the run did not recompute) plus the recomputed
    rows into a staging table, `insert overwrite`s the model from it and drops it; a delete writes
    the rows that stay. The result is the table DuckDB's delete+insert leaves (same key matching:
    `=`, so a null key is never replaced), and the model SQL is the same on every engine.

    A model partitioned on Spark (`partition_by`, set for the large date-keyed tables) rewrites
    only the partitions the run touches: those of the recomputed rows and those holding an older
    version of a recomputed key (so a key whose date changed leaves its old partition). They are
    replaced with `insert_overwrite` in Spark's dynamic partition mode; a daily run rewrites a few
    days, not the history. Dynamic mode cannot empty a partition (it replaces only the partitions
    it writes), so in the rare run that would leave a touched partition empty, the table is
    rewritten whole instead. Other models are rewritten whole on each run (README: which, and why).

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
    {#- static: every partition of a partitioned table is replaced, whatever the session was left at -#}
    {%- do run_query('set spark.sql.sources.partitionOverwriteMode = STATIC') -%}
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
    {%- set partition_by = config.get('partition_by') -%}
    {%- if partition_by -%}
        {{ spark_replace_partitions(source, target, columns, matched, [partition_by] if partition_by is string else partition_by) }}
    {%- else -%}
        {%- set select_sql -%}
            select {{ columns }} from {{ target }} as kept
            where not exists (select 1 from {{ source }} as recomputed where {{ matched }})
            union all
            select {{ columns }} from {{ source }}
        {%- endset -%}
        {{ spark_rewrite_table(target, select_sql) }}
    {%- endif -%}
{% endmacro %}


{#- delete+insert of a partitioned model: only the touched partitions are rewritten (see the top of
    this file). `columns`: the target's, in its order; `matched` compares `recomputed.<key>` with
    `kept.<key>`. -#}
{% macro spark_replace_partitions(source, target, columns, matched, partitions) %}
    {%- set recomputed_table = target.incorporate(path={"identifier": target.identifier ~ '__dbt_recomputed'}) -%}
    {%- set touched_table = target.incorporate(path={"identifier": target.identifier ~ '__dbt_touched'}) -%}
    {%- set staged = target.incorporate(path={"identifier": target.identifier ~ '__dbt_rewrite'}) -%}
    {%- set partition_list = partitions | join(', ') -%}
    {#- the model's SQL once (the source is a view: each read would compute it again) -#}
    {%- do run_query('drop table if exists ' ~ recomputed_table) -%}
    {%- do run_query('create table ' ~ recomputed_table ~ ' using parquet as select ' ~ columns ~ ' from ' ~ source) -%}
    {%- set touched_sql -%}
        select distinct {{ partition_list }} from {{ recomputed_table }}
        union
        select distinct {% for column in partitions %}kept.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
        from {{ target }} as kept
        where exists (select 1 from {{ recomputed_table }} as recomputed where {{ matched }})
    {%- endset -%}
    {%- do run_query('drop table if exists ' ~ touched_table) -%}
    {%- do run_query('create table ' ~ touched_table ~ ' using parquet as ' ~ touched_sql) -%}
    {%- set kept_sql -%}
        select {{ columns }} from {{ target }} as kept
        where not exists (select 1 from {{ recomputed_table }} as recomputed where {{ matched }})
    {%- endset -%}
    {%- set staged_sql -%}
        {{ kept_sql }}
        and exists (select 1 from {{ touched_table }} as touched where {{ spark_same_partition('touched', 'kept', partitions) }})
        union all
        select {{ columns }} from {{ recomputed_table }}
    {%- endset -%}
    {%- do run_query('drop table if exists ' ~ staged) -%}
    {%- do run_query('create table ' ~ staged ~ ' using parquet as ' ~ staged_sql) -%}
    {%- set emptied = run_query(
        'select count(*) from ' ~ touched_table ~ ' as touched where not exists (select 1 from ' ~ staged
        ~ ' as staged where ' ~ spark_same_partition('staged', 'touched', partitions) ~ ')'
    ).columns[0].values()[0] -%}
    {%- if emptied > 0 -%}
        {%- do run_query(spark_rewrite_table(target, kept_sql ~ ' union all select ' ~ columns ~ ' from ' ~ recomputed_table)) -%}
    {%- else -%}
        {%- do run_query('set spark.sql.sources.partitionOverwriteMode = DYNAMIC') -%}
        {%- do run_query(
            'insert overwrite table ' ~ target ~ ' partition (' ~ partition_list ~ ') select ' ~ columns ~ ' from ' ~ staged
        ) -%}
        {%- do run_query('set spark.sql.sources.partitionOverwriteMode = STATIC') -%}
    {%- endif -%}
    {%- for table in (staged, touched_table, recomputed_table) -%}
        {%- do run_query('drop table if exists ' ~ table) -%}
    {%- endfor -%}
    {{- 'refresh table ' ~ target -}}
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
    {%- if execute and spark_rows_match(relation, condition, with_sql) -%}
        {%- set select_sql -%}
            {{ with_sql }}
            select * from {{ relation }} where not coalesce(({{ condition }}), false)
        {%- endset -%}
        {%- do run_query(spark_rewrite_table(relation, select_sql)) -%}
    {%- endif -%}
{%- endmacro %}


{#- `left` and `right` rows lie in the same partition (null-safe: a null value is a partition too). -#}
{% macro spark_same_partition(left, right, partitions) -%}
    {%- for column in partitions %}{{ left }}.{{ column }} <=> {{ right }}.{{ column }}{% if not loop.last %} and {% endif %}{% endfor -%}
{%- endmacro %}


{#- Whether any row of `relation` meets `condition`: a count, where a rewrite would copy the table. -#}
{% macro spark_rows_match(relation, condition, with_sql) -%}
    {%- set count_sql -%}
        {{ with_sql }}
        select count(*) from {{ relation }} where coalesce(({{ condition }}), false)
    {%- endset -%}
    {{- return(run_query(count_sql).columns[0].values()[0] > 0) -}}
{%- endmacro %}
