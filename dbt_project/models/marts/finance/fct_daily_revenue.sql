-- Grain: one row per UTC calendar day, every day from the first order or return to the last one.
-- Net revenue excluding returns = gross revenue of the day's non-cancelled orders - refunds booked
-- that day, both in EUR at the rate fixed at checkout. Summed from unrounded lines, rounded once.
--
-- Incremental: a run recomputes every day from the first one newly loaded rows can change (the
-- earliest ordered_date of the fct_order_lines rows loaded after the newest `loaded_at` the table
-- holds, and the earliest returned_date of the returns loaded since or of an order loaded since:
-- int_returns_converted shows a return only once its order is there) to the last day, and replaces
-- those days whole (unique_key revenue_date); the days after the last one the table holds are
-- recomputed too (a day with no order and no return joins the calendar with nothing pointing at
-- it). An earlier day keeps its row: none of its lines or returns changed. The post-hook deletes
-- the days that left the calendar (the first or last day's orders all cancelled since). The bounds
-- come from two columns of each input. An order's day and a return's day never change; rows
-- deleted from the source are not seen (rebuild with --full-refresh, as upstream). `loaded_at` is
-- the newest load time of the lines (cancelled ones too) and returns of the day: the watermark.
-- The post-hook deletes the days that left the calendar (its first or last day's orders were all
-- cancelled since).
{{
    config(
        materialized='incremental',
        unique_key='revenue_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ delete_rows_outside_calendar('revenue_date', revenue_calendar_bounds()) }}"]
    )
}}

with

{% if is_incremental() -%}
    recompute as (
        select
            least(
                {{ earliest_date_loaded_after_this_run(ref('fct_order_lines'), 'ordered_date') }},
                (
                    select min(changed_returns.returned_date) from {{ ref('int_returns_converted') }} as changed_returns
                    where
                        {{ loaded_after_this_run('changed_returns.loaded_at') }}
                        or changed_returns.order_id in (
                            select changed_orders.order_id from {{ ref('fct_order_lines') }} as changed_orders
                            where {{ loaded_after_this_run('changed_orders.loaded_at') }}
                        )
                ),
                (
                    select cast({{ dbt.dateadd('day', 1, 'max(this_run.revenue_date)') }} as date)
                    from {{ this }} as this_run
                )
            ) as from_date
    ),
{%- endif %}

order_lines as (
    select * from {{ ref('fct_order_lines') }}
    {% if is_incremental() -%}
        where ordered_date >= (select recompute.from_date from recompute)
    {%- endif %}
),

refunds as (
    select * from {{ ref('int_returns_converted') }}
    {% if is_incremental() -%}
        where returned_date >= (select recompute.from_date from recompute)
    {%- endif %}
),

sales_by_day as (
    -- cancelled lines too, for loaded_at: a cancellation is a change of that day
    select
        ordered_date as revenue_date,
        sum(line_amount_eur) filter (where not is_cancelled) as gross_revenue_eur,
        count(distinct order_id) filter (where not is_cancelled) as orders,
        max(loaded_at) as loaded_at
    from order_lines
    group by ordered_date
),

returns_by_day as (
    select
        returned_date as revenue_date,
        sum(refund_amount_eur) as returns_eur,
        max(loaded_at) as loaded_at
    from refunds
    group by returned_date
),

bounds as (
    {{ revenue_calendar_bounds() }}
),

calendar as (
    select cast(spine.day as date) as revenue_date
    from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
    {% if is_incremental() -%}
        where spine.day >= (select recompute.from_date from recompute)
    {%- endif %}
),

daily as (
    select
        calendar.revenue_date,
        cast({{ round_to('coalesce(sales_by_day.gross_revenue_eur, 0)', 2) }} as decimal(18, 2)) as gross_revenue_eur,
        cast({{ round_to('coalesce(returns_by_day.returns_eur, 0)', 2) }} as decimal(18, 2)) as returns_eur,
        coalesce(sales_by_day.orders, 0) as orders,
        greatest(sales_by_day.loaded_at, returns_by_day.loaded_at) as loaded_at
    from calendar
    left join sales_by_day on calendar.revenue_date = sales_by_day.revenue_date
    left join returns_by_day on calendar.revenue_date = returns_by_day.revenue_date
),

final as (
    select
        revenue_date,
        gross_revenue_eur,
        returns_eur,
        -- typed, so PostgreSQL keeps two decimals (numeric - numeric has no fixed scale there)
        cast(gross_revenue_eur - returns_eur as decimal(18, 2)) as net_revenue_eur,
        orders,
        cast(
            case when orders > 0 then round(gross_revenue_eur / orders, 2) end as decimal(18, 2)
        ) as average_order_value_eur,
        loaded_at
    from daily
)

select * from final
