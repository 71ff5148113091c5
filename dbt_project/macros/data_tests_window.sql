{#
    Data tests on the rows a build changed, not on the whole history.

    A large incremental model declares in its YAML which of its rows a daily build can change:

        config:
          meta:
            data_tests_window:
              column: loaded_at                      # rows with column > the audited watermark ...
              audited_through: max(loaded_at)        # ... which is this, once their tests passed

    (`column` may also be an expression over the model's columns, as fct_customer_churn_features'.
    An expression hides the rows' order from DuckDB, which then reads every row group; when the
    expression is at most `days` days after a plain date column, say so and that range is tested
    first, so the row groups of older rows are skipped:

              bounded_by: {column: as_of_date, days: 30}     # column <= as_of_date + 30 days


    Every generic test on such a model then checks only its rows with `column` greater than the
    model's audited watermark (`get_where_subquery` below adds the filter; singular tests call
    `unaudited_rows`). After a build, `record_audited_watermarks` (on-run-end) stores the new
    watermark of each such model whose tests all ran and passed in that invocation; when any of
    them failed or was skipped nothing is stored, so the next build tests the same rows again
    and fails again until they are fixed.

    The whole table is tested instead on a full refresh, when `--vars '{data_tests_scope: all}'`
    is given (the weekly `data_tests_full` DAG), and in a database with no watermark yet.
#}

{% macro data_tests_window(model_name) -%}
    {#- the graph is there at execution only; while parsing, the SQL is not run -#}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {#- one lookup by the node's id: iterating graph.nodes turns every node into a dict, and this
        runs for every test of the build (at ~200 tests, about 7 % of their time in a profile). A
        relation is found by its model's name: a windowed model given another alias would be
        tested whole (slower, never less) -#}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ model_name) -%}
    {{- return(node.config.meta.get('data_tests_window') if node else none) -}}
{%- endmacro %}


{% macro data_tests_see_all_rows() -%}
    {{- return(flags.FULL_REFRESH or var('data_tests_scope', 'new_rows') == 'all') -}}
{%- endmacro %}


{#- The condition selecting `model_name`'s rows that its last passing tests have not seen, or none
    when its tests see every row (no window, a full refresh, data_tests_scope=all). Before any
    watermark is recorded the condition holds for every row. -#}
{% macro unaudited_rows_condition(model_name, relation_alias=none) -%}
    {%- set window = data_tests_window(model_name) -%}
    {%- if window is none or data_tests_see_all_rows() -%}
        {{- return(none) -}}
    {%- endif -%}
    {#- `column` may be an expression over the model's columns; a relation alias needs a plain column -#}
    {%- if relation_alias and not modules.re.fullmatch('[a-z_][a-z0-9_]*', window['column']) -%}
        {{- exceptions.raise_compiler_error(
            model_name ~ ": data_tests_window.column is an expression; it cannot be qualified by " ~ relation_alias
        ) -}}
    {%- endif -%}
    {%- set prefix = relation_alias ~ '.' if relation_alias else '' -%}
    {%- set column = prefix ~ window['column'] -%}
    {%- set watermark -%}
        coalesce(
            (
                select max(watermarks.audited_through) from ops.data_test_watermarks as watermarks
                where watermarks.model_name = '{{ model_name }}'
            ),
            {{ lowest_timestamp() }}
        )
    {%- endset -%}
    {%- set bound = window.get('bounded_by') -%}
    {%- set condition -%}
        {%- if bound -%}
            {#- the plain column itself, not cast: a cast column is not compared with the row groups' ranges -#}
            {{ prefix ~ bound['column'] }} > cast({{ dbt.dateadd('day', -(bound['days'] | int), watermark) }} as date)
            and
        {% endif -%}
        cast({{ column }} as timestamp) > {{ watermark }}
    {%- endset -%}
    {{- return(condition) -}}
{%- endmacro %}


{#- For singular tests: the unaudited rows of `model_name` (every row where the tests see all). -#}
{% macro unaudited_rows(model_name, relation_alias=none) -%}
    {{- unaudited_rows_condition(model_name, relation_alias) or '1 = 1' -}}
{%- endmacro %}


{#- dbt's own macro, overridden: the `where` config of a test is kept, and a model with a
    `data_tests_window` is narrowed to its unaudited rows. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set narrowed = unaudited_rows_condition(relation.identifier) -%}
    {%- if narrowed -%}
        {%- set where = '(' ~ where ~ ') and ' ~ narrowed if where else narrowed -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{- return(filtered) -}}
    {%- else -%}
        {{- return(relation) -}}
    {%- endif -%}
{%- endmacro %}


{% macro create_data_test_watermarks() -%}
    {%- if flags.WHICH in ('build', 'test', 'run') -%}
        {{- statements_in_one_hook([
            'create schema if not exists ops',
            'create table if not exists ops.data_test_watermarks (
            model_name varchar(200),
            audited_through timestamp,
            invocation_id varchar(64),
            recorded_at timestamp
        )',
        ]) -}}
    {%- endif -%}
{%- endmacro %}


{#- on-run-end: for each model with a window, when every one of its tests ran in this invocation
    and passed, store how far its rows are now audited. All of them, not just those that ran: a
    `dbt test --select <one test>` must not mark rows audited that the model's other tests never saw. -#}
{% macro record_audited_watermarks(results) -%}
    {%- if not execute or flags.WHICH not in ('build', 'test') -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set statements = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set window = node.config.meta.get('data_tests_window') -%}
        {%- if window -%}
            {%- set tests = [] -%}
            {%- set failed = [] -%}
            {%- for result in results
                if result.node.resource_type == 'test' and node.unique_id in result.node.depends_on.nodes -%}
                {%- do tests.append(result) -%}
                {%- if result.status not in ('pass', 'warn') -%}
                    {%- do failed.append(result) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set expected = [] -%}
            {%- for test in graph.nodes.values()
                if test.resource_type == 'test' and node.unique_id in test.depends_on.nodes -%}
                {%- do expected.append(test.unique_id) -%}
            {%- endfor -%}
            {%- set ran = tests | map(attribute='node') | map(attribute='unique_id') | list -%}
            {%- set missing = expected | reject('in', ran) | list -%}
            {%- if tests and not failed and not missing -%}
                {%- do statements.append(
                    "insert into ops.data_test_watermarks select '" ~ node.alias ~ "', cast(("
                    ~ window['audited_through'] ~ ") as timestamp), '" ~ invocation_id ~ "', current_timestamp"
                    ~ " from " ~ node.relation_name
                ) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(statements_in_one_hook(statements)) -}}
{%- endmacro %}
