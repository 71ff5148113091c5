{#- source() for a table that may not be loaded yet in every environment (the marketing API).

    Returns the source relation when it exists. When it does not, and the project var
    `marketing_api_required` is false, it returns an empty typed relation and logs a warning, so the
    rest of the project still builds (marketing marts are then empty). `source()` is always called,
    so lineage and freshness see the dependency either way. The empty relation carries an alias:
    PostgreSQL requires one on a subquery in FROM. -#}
{% macro source_if_loaded(source_name, table_name, column_types) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and not var('marketing_api_required') -%}
        {%- set found = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier
        ) -%}
        {%- if found is none -%}
            {%- do exceptions.warn(
                "source " ~ source_name ~ "." ~ table_name ~ " (" ~ relation ~ ") is not loaded yet: "
                ~ "building " ~ this ~ " from an empty table. Set var marketing_api_required: true to fail instead."
            ) -%}
            (
                select
                {%- for column_name, data_type in column_types.items() %}
                    cast(null as {{ dbt.type_string() if data_type == "varchar" else data_type }}) as {{ column_name }}{{ "," if not loop.last }}
                {%- endfor %}
                where false
            ) as not_loaded_yet
        {%- else -%}
            {{ relation }}
        {%- endif -%}
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
