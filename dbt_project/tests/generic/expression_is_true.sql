{#- Every row satisfies a boolean SQL expression: fails with the rows that do not.

    Named and called like dbt_utils.expression_is_true (no `dbt_utils.` prefix: see the README, Tests
    at three levels). On the model, `expression` is the whole condition; under a column it is what
    follows the column name (`expression: ">= 0"` tests `<column> >= 0`).

    One deliberate difference: a row whose expression is NULL fails here (NULL is not true), where
    dbt_utils lets it pass. The rules below compare columns that may be NULL (a missing rate, an
    interval of a control variant), and such a row is a defect, not a pass. -#}
{% test expression_is_true(model, expression, column_name=none) %}

{%- set condition = expression if column_name is none else column_name ~ ' ' ~ expression %}

with

model_rows as (
    select * from {{ model }}
),

violations as (
    select * from model_rows where not coalesce(({{ condition }}), false)
)

select * from violations

{% endtest %}
