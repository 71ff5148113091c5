{#- Every row satisfies a boolean SQL expression: fails with the rows that do not. On a column the
    expression is still written in full (column_name is accepted so it can sit under the column). -#}
{% test expression_is_true(model, expression, column_name=none) %}

with

model_rows as (
    select * from {{ model }}
),

violations as (
    select * from model_rows where not coalesce(({{ expression }}), false)
)

select * from violations

{% endtest %}
