-- Grain: one row per metric of the semantic layer: the KPI dictionary, with each KPI's definition,
-- owner, formula, unit, grain, leading/lagging type and the question it answers.
-- Rendered from the metrics' YAML at run time (graph.metrics), so the table can never disagree with
-- the definitions: to change a KPI, edit its YAML (the `defined_in` column says where).
{%- set meta_columns = ['owner', 'formula', 'unit', 'grain', 'indicator_type', 'question'] -%}
{%- set dictionary_columns = [
    'metric_name', 'label', 'description', 'metric_type', 'owner', 'formula', 'unit', 'grain',
    'indicator_type', 'business_question', 'source_tables', 'defined_in'
] -%}
{%- set rows = [] -%}
{%- if execute -%}
    {%- for metric in graph.metrics.values() | sort(attribute='name') -%}
        {%- set meta = metric.config.meta if metric.config.meta else metric.meta -%}
        {%- set values = [
            kpi_literal(metric.name),
            kpi_literal(metric.label),
            kpi_literal(metric.description),
            kpi_literal(metric.type),
        ] -%}
        {%- for key in meta_columns -%}
            {%- do values.append(kpi_literal(meta.get(key))) -%}
        {%- endfor -%}
        {%- do values.append(kpi_literal(kpi_source_tables(metric.unique_id) | join(', '))) -%}
        {%- do values.append(kpi_literal(metric.original_file_path)) -%}
        {%- do rows.append('(' ~ values | join(', ') ~ ')') -%}
    {%- endfor -%}
{%- endif -%}
{%- if not rows -%}
    {#- no metrics (yet): one all-null row, filtered out below, keeps the columns and their types -#}
    {%- do rows.append('(' ~ (['cast(null as ' ~ dbt.type_string() ~ ')'] * dictionary_columns | length) | join(', ') ~ ')') -%}
{%- endif %}

with

metrics as (
    select metric_rows.*
    from (
        values
        {{ rows | join(',\n        ') }}
    ) as metric_rows ({{ dictionary_columns | join(', ') }})
),

final as (
    select * from metrics
    where metric_name is not null
)

select * from final
