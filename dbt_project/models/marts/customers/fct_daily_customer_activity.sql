-- Grain: one row per UTC day, every day from the first to the last order day.
-- Active customer (30d): placed at least one non-cancelled order in the 30 days ending that day
-- (the day itself and the 29 before). New: the day holds the customer's first non-cancelled order.
-- Returning: ordered that day, first order on an earlier day.
--
-- Incremental: a run recomputes every day from the first one a newly loaded order line can change
-- (the earliest ordered_date of the fct_order_lines rows loaded after the newest `loaded_at` in the
-- table: a new order, a cancellation, a late line) to the last order day, and replaces those days
-- whole (unique_key activity_date). An earlier day keeps its row: its orders did not change, nor did
-- its customers' first order days (one moves only when a line on its old or new day changes;
-- dim_customers, built before this, has the new one), and its window looks back only. Also
-- recomputed: the days after the last one the table holds (a day with no order at all joins the
-- calendar with no loaded line pointing at it). The active count runs from 30 days before the first
-- recomputed day: a spell opened earlier closed before that day, so the running sum is exact, and
-- each spell's lead() sees all the customer's later days. has_full_trailing_window depends on the
-- first order day, which moves only when a line on its old or new day changes: every day is
-- recomputed then. The bounds come from a scan of two columns of fct_order_lines. An order's day never
-- changes; rows deleted from the source are not seen (as in fct_order_lines: rebuild with
-- --full-refresh).
-- The post-hook deletes the days that left the calendar (its first or last day's orders were all
-- cancelled since).
{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ delete_rows_outside_calendar('activity_date', order_day_bounds()) }}"]
    )
}}

with

{% if is_incremental() -%}
    -- the first day to recompute, and the first one whose spells its active count needs (see above)
    recompute as (
        select
            least(
                {{ earliest_date_loaded_after_this_run(ref('fct_order_lines'), 'ordered_date') }},
                (
                    select cast({{ dbt.dateadd('day', 1, 'max(this_run.activity_date)') }} as date)
                    from {{ this }} as this_run
                )
            ) as from_date
    ),

    recompute_window as (
        select
            from_date,
            cast({{ dbt.dateadd('day', -30, 'from_date') }} as date) as window_start
        from recompute
    ),
{%- endif %}

customers as (
    select * from {{ ref('dim_customers') }}
),

-- the first and last non-cancelled order day of the whole history (two columns of the input)
bounds as (
    {{ order_day_bounds() }}
),

customer_days as (
    select distinct
        customer_id,
        ordered_date as activity_date
    from {{ ref('fct_order_lines') }}
    where
        not is_cancelled
    {% if is_incremental() -%}
        and ordered_date >= (select recompute_window.window_start from recompute_window)
    {%- endif %}
),

-- the watermark of a day: the newest load among its order lines, cancelled ones included
day_loads as (
    select
        ordered_date as activity_date,
        max(loaded_at) as loaded_at
    from {{ ref('fct_order_lines') }}
    {% if is_incremental() -%}
        where ordered_date >= (select recompute_window.from_date from recompute_window)
    {%- endif %}
    group by ordered_date
),

calendar as (
    {% if is_incremental() -%}
        select cast(spine.day as date) as activity_date
        from bounds, recompute_window,
            {{ day_series('greatest(bounds.first_date, recompute_window.window_start)', 'bounds.last_date') }}
            as spine (day)
    {%- else -%}
        select cast(spine.day as date) as activity_date
        from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
    {%- endif %}
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
            as has_full_trailing_window,
        day_loads.loaded_at
    from calendar
    cross join bounds
    left join ordering on calendar.activity_date = ordering.activity_date
    left join trailing_activity on calendar.activity_date = trailing_activity.activity_date
    left join day_loads on calendar.activity_date = day_loads.activity_date
    {% if is_incremental() -%}
        where calendar.activity_date >= (select recompute_window.from_date from recompute_window)
    {%- endif %}
)

select * from final
