{#- Helpers for marts.kpi_dictionary, which is rendered from the semantic layer's metrics (graph.metrics). -#}

{#- The tables a metric is computed from: the semantic models it reads, followed through ratio and
    derived metrics to their inputs. Returns a sorted list of "schema.table". -#}
{% macro kpi_source_tables(unique_id) -%}
    {%- set found = [] -%}
    {%- if unique_id.startswith('semantic_model.') -%}
        {%- set relation = graph.semantic_models[unique_id].node_relation -%}
        {%- do found.append(relation.schema_name ~ '.' ~ relation.alias) -%}
    {%- elif unique_id.startswith('metric.') -%}
        {%- for parent in graph.metrics[unique_id].depends_on.nodes -%}
            {%- for table in kpi_source_tables(parent) -%}
                {%- if table not in found -%}{%- do found.append(table) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found | sort | list) }}
{%- endmacro %}

{#- A SQL string literal (or null). -#}
{% macro kpi_literal(value) -%}
    {%- if value is none or value == '' -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        '{{ dbt.escape_single_quotes(value | string | trim) }}'
    {%- endif -%}
{%- endmacro %}
