-- Grain: one row per UTC day, every day from the first to the last order day.
-- Active customer (30d): placed at least one non-cancelled order in the 30 days ending that day
-- (the day itself and the 29 before). New: the day holds the customer's first non-cancelled order.
-- Returning: ordered that day, first order on an earlier day.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

customer_days as (
    select distinct
        customer_id,
        ordered_date as activity_date
    from order_lines
    where not is_cancelled
),

bounds as (
    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from customer_days
),

calendar as (
    select cast(spine.day as date) as activity_date
    from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
),

ordering as (
    select
        customer_days.activity_date,
        count(*) as ordering_customers,
        sum(case when customers.first_order_date = customer_days.activity_date then 1 else 0 end) as new_customers
    from customer_days
    inner join customers on customer_days.customer_id = customers.customer_id
    group by customer_days.activity_date
),

-- Active on D <=> an order day a with D - 30 < a <= D. Each order day opens an active spell that
-- closes 30 days later or at the customer's next order day, whichever comes first, so a customer's
-- spells never overlap and the active count of D is a running sum of spells opened minus spells
-- closed: linear in order days (joining every day to its 30 trailing days made 30 rows of each).
spells as (
    select
        activity_date as opened_on,
        least(
            cast({{ dbt.dateadd('day', 30, 'activity_date') }} as date),
            coalesce(
                lead(activity_date) over (partition by customer_id order by activity_date),
                cast({{ dbt.dateadd('day', 30, 'activity_date') }} as date)
            )
        ) as closed_on
    from customer_days
),

spell_changes as (
    select
        opened_on as change_date,
        1 as active_change
    from spells
    union all
    select
        closed_on as change_date,
        -1 as active_change
    from spells
),

daily_changes as (
    select
        change_date,
        sum(active_change) as active_change
    from spell_changes
    group by change_date
),

trailing_activity as (
    select
        calendar.activity_date,
        cast(sum(coalesce(daily_changes.active_change, 0)) over (
            order by calendar.activity_date rows between unbounded preceding and current row
        ) as bigint) as active_customers_30d
    from calendar
    left join daily_changes on calendar.activity_date = daily_changes.change_date
),

final as (
    select
        calendar.activity_date,
        coalesce(ordering.ordering_customers, 0) as ordering_customers,
        coalesce(ordering.new_customers, 0) as new_customers,
        coalesce(ordering.ordering_customers, 0) - coalesce(ordering.new_customers, 0) as returning_customers,
        coalesce(trailing_activity.active_customers_30d, 0) as active_customers_30d,
        cast({{ dbt.dateadd('day', -29, 'calendar.activity_date') }} as date) >= bounds.first_date
            as has_full_trailing_window
    from calendar
    cross join bounds
    left join ordering on calendar.activity_date = ordering.activity_date
    left join trailing_activity on calendar.activity_date = trailing_activity.activity_date
)

select * from final
