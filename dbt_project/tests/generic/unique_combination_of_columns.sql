{#- The columns together identify a row (the model's grain): fails with each duplicated key. -#}
{% test unique_combination_of_columns(model, columns) %}

with

keyed as (
    select {{ columns | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
),

duplicated as (
    select * from keyed where row_count > 1
)

select * from duplicated

{% endtest %}
