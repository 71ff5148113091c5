-- Grain: one row per UTC day x country x sales channel, every day from the segment's first order day
-- to the last order day of the shop (zeros included, so a filtered trend never has holes).
-- Country and channel are those of the order, as in fct_daily_revenue_by_segment.
-- Active customer (30d) of a segment: placed at least one non-cancelled order in that segment in the
-- 30 days ending that day (the day itself and the 29 before). A customer who orders in several
-- segments counts in each, so segments do not add up to fct_daily_customer_activity.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

customer_segment_days as (
    select distinct
        customer_id,
        country_code,
        channel,
        ordered_date as activity_date
    from order_lines
    where not is_cancelled
),

bounds as (
    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from customer_segment_days
),

calendar as (
    select cast(spine.day as date) as activity_date
    from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
),

segments as (
    select
        country_code,
        channel,
        min(activity_date) as first_date
    from customer_segment_days
    group by country_code, channel
),

segment_calendar as (
    select
        calendar.activity_date,
        segments.country_code,
        segments.channel
    from calendar
    inner join segments on calendar.activity_date >= segments.first_date
),

ordering as (
    select
        activity_date,
        country_code,
        channel,
        count(*) as ordering_customers
    from customer_segment_days
    group by activity_date, country_code, channel
),

-- Active on D as in fct_daily_customer_activity, per segment: each order day opens a spell that
-- closes 30 days later or at the customer's next order day in the segment, whichever comes first,
-- and the active count is a running sum of spells opened minus closed (linear in order days).
spells as (
    select
        country_code,
        channel,
        activity_date as opened_on,
        least(
            cast({{ dbt.dateadd('day', 30, 'activity_date') }} as date),
            coalesce(
                lead(activity_date) over (partition by customer_id, country_code, channel order by activity_date),
                cast({{ dbt.dateadd('day', 30, 'activity_date') }} as date)
            )
        ) as closed_on
    from customer_segment_days
),

spell_changes as (
    select
        country_code,
        channel,
        opened_on as change_date,
        1 as active_change
    from spells
    union all
    select
        country_code,
        channel,
        closed_on as change_date,
        -1 as active_change
    from spells
),

daily_changes as (
    select
        country_code,
        channel,
        change_date,
        sum(active_change) as active_change
    from spell_changes
    group by country_code, channel, change_date
),

trailing_activity as (
    select
        segment_calendar.activity_date,
        segment_calendar.country_code,
        segment_calendar.channel,
        cast(sum(coalesce(daily_changes.active_change, 0)) over (
            partition by segment_calendar.country_code, segment_calendar.channel
            order by segment_calendar.activity_date
            rows between unbounded preceding and current row
        ) as bigint) as active_customers_30d
    from segment_calendar
    left join daily_changes
        on
            segment_calendar.country_code = daily_changes.country_code
            and segment_calendar.channel = daily_changes.channel
            and segment_calendar.activity_date = daily_changes.change_date
),

final as (
    select
        segment_calendar.activity_date,
        segment_calendar.country_code,
        segment_calendar.channel,
        coalesce(ordering.ordering_customers, 0) as ordering_customers,
        coalesce(trailing_activity.active_customers_30d, 0) as active_customers_30d,
        cast({{ dbt.dateadd('day', -29, 'segment_calendar.activity_date') }} as date) >= bounds.first_date
            as has_full_trailing_window
    from segment_calendar
    cross join bounds
    left join ordering
        on
            segment_calendar.activity_date = ordering.activity_date
            and segment_calendar.country_code = ordering.country_code
            and segment_calendar.channel = ordering.channel
    left join trailing_activity
        on
            segment_calendar.activity_date = trailing_activity.activity_date
            and segment_calendar.country_code = trailing_activity.country_code
            and segment_calendar.channel = trailing_activity.channel
)

select * from final
