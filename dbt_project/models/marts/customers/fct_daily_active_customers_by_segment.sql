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

trailing_activity as (
    select
        segment_calendar.activity_date,
        segment_calendar.country_code,
        segment_calendar.channel,
        count(distinct customer_segment_days.customer_id) as active_customers_30d
    from segment_calendar
    inner join customer_segment_days
        on
            segment_calendar.country_code = customer_segment_days.country_code
            and segment_calendar.channel = customer_segment_days.channel
            and segment_calendar.activity_date >= customer_segment_days.activity_date
            and cast({{ dbt.dateadd('day', -30, 'segment_calendar.activity_date') }} as date)
            < customer_segment_days.activity_date
    group by segment_calendar.activity_date, segment_calendar.country_code, segment_calendar.channel
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
