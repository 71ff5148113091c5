{#- source() for a partner's table, which exists only once that partner has delivered a file
    (ingestion/partner_files creates raw.partner_<partner> on its first load).

    Returns the source relation when it exists, else an empty typed relation: a partner that has
    not delivered yet is a normal state (its freshness is what alerts), so this only logs it.
    `source()` is always called, so lineage and freshness see the dependency. The empty relation
    carries an alias: PostgreSQL requires one on a subquery in FROM. -#}
{% macro partner_source(table_name, column_types) -%}
    {%- set relation = source('partner', table_name) -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) if execute else relation -%}
    {%- if found is none -%}
        {%- do log("partner table " ~ relation ~ ": no file delivered yet, " ~ this ~ " is empty", info=true) -%}
        (
            select
            {%- for column_name, data_type in column_types.items() %}
                cast(null as {{ dbt.type_string() if data_type == "varchar" else data_type }}) as {{ column_name }}{{ "," if not loop.last }}
            {%- endfor %}
            where false
        ) as not_delivered_yet
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
