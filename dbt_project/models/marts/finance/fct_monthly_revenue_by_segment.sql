-- Grain: one row per calendar month x country x sales channel x currency, summed from the daily
-- segments (so a month equals the sum of its days as shown). AOV is recomputed from the month's sums,
-- never averaged over days.
with

daily as (
    select * from {{ ref('fct_daily_revenue_by_segment') }}
),

daily_in_months as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'revenue_date') }} as date) as revenue_month
    from daily
),

monthly as (
    select
        revenue_month,
        country_code,
        channel,
        currency,
        sum(gross_revenue_eur) as gross_revenue_eur,
        sum(returns_eur) as returns_eur,
        sum(net_revenue_eur) as net_revenue_eur,
        sum(orders) as orders,
        sum(net_revenue_local) as net_revenue_local,
        count(*) as days_with_activity,
        count(net_revenue_eur_at_reference_rate) as days_with_reference_rate,
        sum(net_revenue_eur_at_reference_rate) as net_revenue_eur_at_reference_rate
    from daily_in_months
    group by revenue_month, country_code, channel, currency
),

final as (
    select
        revenue_month,
        country_code,
        channel,
        currency,
        gross_revenue_eur,
        returns_eur,
        net_revenue_eur,
        orders,
        cast(
            case when orders > 0 then round(gross_revenue_eur / orders, 2) end as decimal(18, 2)
        ) as average_order_value_eur,
        net_revenue_local,
        -- only when every active day had a reference rate: a partial sum would understate it
        case
            when days_with_reference_rate = days_with_activity then net_revenue_eur_at_reference_rate
        end as net_revenue_eur_at_reference_rate
    from monthly
)

select * from final
