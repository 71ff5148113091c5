-- Grain: one row per UTC day from the first to the last day the marketing API reported spend.
-- Attribution is blended: marketing channels (web_search, social, display, ...) are not linked to
-- orders, whose channel is where they were placed (web, mobile, marketplace). So
--   CAC  = all marketing spend of the day / customers whose first non-cancelled order is that day;
--   ROAS = net revenue excluding returns of the day / all marketing spend of the day.
-- For a week or a month, divide the period's sums (the semantic layer's ratio metrics do); never
-- average the daily ratios.
with

spend as (
    select * from {{ ref('fct_daily_marketing_spend') }}
),

customer_activity as (
    select * from {{ ref('fct_daily_customer_activity') }}
),

revenue as (
    select * from {{ ref('fct_daily_revenue') }}
),

spend_by_day as (
    select
        spend_date,
        sum(spend_eur) as marketing_spend_eur,
        count(*) - count(spend_eur) as channels_without_spend_eur
    from spend
    group by spend_date
),

bounds as (
    select
        min(spend_date) as first_date,
        max(spend_date) as last_date
    from spend_by_day
),

calendar as (
    select cast(spine.day as date) as activity_date
    from bounds, {{ day_series('bounds.first_date', 'bounds.last_date') }} as spine (day)
),

daily as (
    select
        calendar.activity_date,
        case
            when spend_by_day.spend_date is null then 0
            when spend_by_day.channels_without_spend_eur = 0 then spend_by_day.marketing_spend_eur
        end as marketing_spend_eur,
        coalesce(customer_activity.new_customers, 0) as new_customers,
        coalesce(revenue.net_revenue_eur, 0) as net_revenue_eur
    from calendar
    left join spend_by_day on calendar.activity_date = spend_by_day.spend_date
    left join customer_activity on calendar.activity_date = customer_activity.activity_date
    left join revenue on calendar.activity_date = revenue.revenue_date
),

final as (
    select
        activity_date,
        cast(marketing_spend_eur as decimal(18, 2)) as marketing_spend_eur,
        new_customers,
        cast(net_revenue_eur as decimal(18, 2)) as net_revenue_eur,
        cast({{ round_to('marketing_spend_eur / nullif(new_customers, 0)', 2) }} as decimal(18, 2))
            as customer_acquisition_cost_eur,
        cast(net_revenue_eur as {{ type_double() }}) / nullif(marketing_spend_eur, 0) as return_on_ad_spend
    from daily
)

select * from final
