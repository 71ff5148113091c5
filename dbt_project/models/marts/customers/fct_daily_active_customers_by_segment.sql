-- Grain: one row per UTC day x country x sales channel, every day from the segment's first order day
-- to the last order day of the shop (zeros included, so a filtered trend never has holes).
-- Country and channel are those of the order, as in fct_daily_revenue_by_segment.
-- Active customer (30d) of a segment: placed at least one non-cancelled order in that segment in the
-- 30 days ending that day (the day itself and the 29 before). A customer who orders in several
-- segments counts in each, so segments do not add up to fct_daily_customer_activity.
--
-- Incremental, as fct_daily_customer_activity: a run recomputes every day from the earliest
-- ordered_date of the fct_order_lines rows loaded after the newest `loaded_at` in the table (or from
-- the day after the last one it holds, if earlier) to the last order day, all segments, and replaces
-- those days whole (unique_key activity_date alone, so a segment row that vanished from a recomputed
-- day, e.g. before the segment's new first day, goes too). Earlier days cannot change: a segment's
-- (or the shop's) first day moves only when a line on its old or new day changes, so both are
-- recomputed. The active counts run from 30 days before the first recomputed day (a spell opened
-- earlier is closed by then). The segments and their first days come from one scan of four columns
-- of fct_order_lines. An order's day, country and channel never change; rows deleted from the source
-- are not seen (rebuild with --full-refresh).
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
    -- the first day to recompute, and the first one whose spells its active counts need (see above)
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

-- every segment with its first and last non-cancelled order day, of the whole history
segments as (
    select
        country_code,
        channel,
        min(ordered_date) as first_date,
        max(ordered_date) as last_date
    from {{ ref('fct_order_lines') }}
    where not is_cancelled
    group by country_code, channel
),

bounds as (
    select
        min(first_date) as first_date,
        max(last_date) as last_date
    from segments
),

customer_segment_days as (
    select distinct
        customer_id,
        country_code,
        channel,
        ordered_date as activity_date
    from {{ ref('fct_order_lines') }}
    where
        not is_cancelled
    {% if is_incremental() -%}
        and ordered_date >= (select recompute_window.window_start from recompute_window)
    {%- endif %}
),

-- the watermark of a day: the newest load among the shop's order lines of the day (any segment,
-- cancelled ones included)
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
            as has_full_trailing_window,
        day_loads.loaded_at
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
    left join day_loads on segment_calendar.activity_date = day_loads.activity_date
    {% if is_incremental() -%}
        where segment_calendar.activity_date >= (select recompute_window.from_date from recompute_window)
    {%- endif %}
)

select * from final
