-- Grain: one row per UTC calendar day, every day from the first order or return to the last one.
-- Net revenue excluding returns = gross revenue of the day's non-cancelled orders - refunds booked
-- that day, both in EUR at the rate fixed at checkout. Summed from unrounded lines, rounded once.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

refunds as (
    select * from {{ ref('int_returns_converted') }}
),

sales_by_day as (
    select
        ordered_date as revenue_date,
        sum(line_amount_eur) as gross_revenue_eur,
        count(distinct order_id) as orders
    from order_lines
    where not is_cancelled
    group by ordered_date
),

returns_by_day as (
    select
        returned_date as revenue_date,
        sum(refund_amount_eur) as returns_eur
    from refunds
    group by returned_date
),

bounds as (
    select
        min(revenue_date) as first_date,
        max(revenue_date) as last_date
    from (
        select revenue_date from sales_by_day
        union all
        select revenue_date from returns_by_day
    ) as activity_days
),

calendar as (
    select cast(spine.day as date) as revenue_date
    from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
),

daily as (
    select
        calendar.revenue_date,
        cast({{ round_to('coalesce(sales_by_day.gross_revenue_eur, 0)', 2) }} as decimal(18, 2)) as gross_revenue_eur,
        cast({{ round_to('coalesce(returns_by_day.returns_eur, 0)', 2) }} as decimal(18, 2)) as returns_eur,
        coalesce(sales_by_day.orders, 0) as orders
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
        ) as average_order_value_eur
    from daily
)

select * from final
