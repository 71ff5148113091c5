{#- Like `relationships`, but a child row may wait for its parent while the parent table's extracts
    have not yet reached the day after the child changed (a late parent).

    The lake takes each table's rows by the day of their last change. An order placed at 23:55 and
    cancelled at 00:00 lands with the next day's extract, its lines with today's: for one extract
    day the lines have no order, and the next day's load completes them (no row is lost). Lines
    whose change day is at or after the newest change day in the parent table are that case and
    are skipped here (a `relationships` test with severity warn reports them); any other line
    without its parent is an orphan and fails. -#}
{% test relationships_settled(model, column_name, to, field, changed_at='updated_at') %}

with

children as (
    select
        {{ column_name }} as parent_key,
        cast({{ changed_at }} as date) as changed_date
    from {{ model }}
    where {{ column_name }} is not null
),

-- only the children's keys (a semi-join: see macros/relationships.sql)
parents as (
    select {{ field }} as parent_key from {{ to }}
    where {{ field }} in (select children.parent_key from children)
),

newest_parent_day as (
    select cast(max({{ changed_at }}) as date) as newest_date from {{ to }}
),

orphans as (
    select children.*
    from children
    cross join newest_parent_day
    left join parents on children.parent_key = parents.parent_key
    where
        parents.parent_key is null
        and (newest_parent_day.newest_date is null or children.changed_date < newest_parent_day.newest_date)
)

select * from orphans

{% endtest %}
