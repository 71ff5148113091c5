{#
    a + b where either may be null: null only when both are (a sum over no rows stays unknown,
    one over some rows is not swallowed by a null from the other side).
#}
{% macro sum_of_nullables(a, b) -%}
    coalesce({{ a }} + {{ b }}, {{ a }}, {{ b }})
{%- endmacro %}
