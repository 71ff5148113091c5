{#- The columns together identify a row (the model's grain): fails with each duplicated key and how
    many rows share it.

    Named and called like dbt_utils.unique_combination_of_columns (no `dbt_utils.` prefix: see the
    README, Tests at three levels): `combination_of_columns` lists the columns, `quote_columns: true`
    quotes names that are not plain identifiers. -#}
{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}

{%- if quote_columns not in [true, false] %}
    {{ exceptions.raise_compiler_error("quote_columns takes true or false, got " ~ quote_columns) }}
{%- endif %}
{%- set key = [] %}
{%- for column in combination_of_columns %}
    {%- do key.append(adapter.quote(column) if quote_columns else column) %}
{%- endfor %}

with

keyed as (
    select {{ key | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ key | join(', ') }}
),

duplicated as (
    select * from keyed where row_count > 1
)

select * from duplicated

{% endtest %}
