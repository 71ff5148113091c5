-- Fails when a month of fct_monthly_revenue_by_segment is not exactly the sum of its days in
-- fct_daily_revenue_by_segment: the monthly and daily dashboards would then disagree.
with

daily as (
    select * from {{ ref('fct_daily_revenue_by_segment') }}
),

monthly as (
    select * from {{ ref('fct_monthly_revenue_by_segment') }}
),

days_in_months as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'revenue_date') }} as date) as revenue_month
    from daily
),

summed_days as (
    select
        revenue_month,
        sum(gross_revenue_eur) as gross_revenue_eur,
        sum(returns_eur) as returns_eur,
        sum(net_revenue_eur) as net_revenue_eur,
        sum(orders) as orders
    from days_in_months
    group by revenue_month
),

summed_months as (
    select
        revenue_month,
        sum(gross_revenue_eur) as gross_revenue_eur,
        sum(returns_eur) as returns_eur,
        sum(net_revenue_eur) as net_revenue_eur,
        sum(orders) as orders
    from monthly
    group by revenue_month
),

compared as (
    select
        coalesce(summed_days.revenue_month, summed_months.revenue_month) as revenue_month,
        summed_days.net_revenue_eur as days_net_revenue_eur,
        summed_months.net_revenue_eur as month_net_revenue_eur,
        summed_days.revenue_month is not null
        and summed_months.revenue_month is not null
        and summed_days.gross_revenue_eur = summed_months.gross_revenue_eur
        and summed_days.returns_eur = summed_months.returns_eur
        and summed_days.net_revenue_eur = summed_months.net_revenue_eur
        and summed_days.orders = summed_months.orders as is_equal
    from summed_days
    full outer join summed_months on summed_days.revenue_month = summed_months.revenue_month
)

select * from compared
where not is_equal
