{#-
    dbt's `relationships` test, with the parent read only for the keys the children have.

    The same verdict as dbt's own (a non-null child key with no parent row fails), but the parent
    is first narrowed to the children's keys by a semi-join: the engine hashes the few child keys
    and scans the parent against them, and DuckDB pushes their range into that scan, so a daily
    build's new children (narrowed to unaudited rows, macros/data_tests_window.sql) can skip the
    parent's older row groups instead of hashing every key of the parent. Measured at ten million
    orders a year: returns -> order lines 0.25 -> 0.05 s; where the new children's keys span the
    whole parent (order lines -> orders) it is no faster. Dispatched like dbt's, so it applies to
    every `relationships` test.
-#}
{% macro default__test_relationships(model, column_name, to, field) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
    where {{ field }} in (select child.from_field from child)
)

select
    child.from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
