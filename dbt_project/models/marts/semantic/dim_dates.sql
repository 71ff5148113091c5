-- One row per calendar day between the calendar_start_date and calendar_end_date vars: the date
-- dimension, and the semantic layer's time spine (MetricFlow joins metrics to it by day).
with

days as (
    select cast(spine.day as date) as date_day
    from {{ day_series(
        "cast('" ~ var('calendar_start_date') ~ "' as date)",
        "cast('" ~ var('calendar_end_date') ~ "' as date)"
    ) }} as spine (day)
),

final as (
    select
        date_day,
        cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start_date,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
        cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
        {{ iso_day_of_week('date_day') }} as iso_day_of_week,
        {{ iso_day_of_week('date_day') }} >= 6 as is_weekend
    from days
)

select * from final
