-- Grain: one row per UTC day x country x sales channel x currency that had an order or a return.
-- The EUR figures use each order's checkout rate (what the customer paid: the shop's truth); the
-- reference-rate columns revalue the same local-currency net revenue at the external API's rate of
-- the day, as a cross-check of the FX effect.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

refunds as (
    select * from {{ ref('int_returns_converted') }}
),

exchange_rates as (
    select * from {{ ref('int_exchange_rates_carried_forward') }}
),

sales as (
    select
        ordered_date as revenue_date,
        country_code,
        channel,
        currency,
        sum(line_amount) as gross_revenue_local,
        sum(line_amount_eur) as gross_revenue_eur,
        count(distinct order_id) as orders
    from order_lines
    where not is_cancelled
    group by ordered_date, country_code, channel, currency
),

returns_by_segment as (
    select
        returned_date as revenue_date,
        country_code,
        channel,
        currency,
        sum(refund_amount) as returns_local,
        sum(refund_amount_eur) as returns_eur
    from refunds
    group by returned_date, country_code, channel, currency
),

segments as (
    select
        coalesce(sales.revenue_date, returns_by_segment.revenue_date) as revenue_date,
        coalesce(sales.country_code, returns_by_segment.country_code) as country_code,
        coalesce(sales.channel, returns_by_segment.channel) as channel,
        coalesce(sales.currency, returns_by_segment.currency) as currency,
        coalesce(sales.gross_revenue_local, 0) - coalesce(returns_by_segment.returns_local, 0) as net_revenue_local,
        cast({{ round_to('coalesce(sales.gross_revenue_eur, 0)', 2) }} as decimal(18, 2)) as gross_revenue_eur,
        cast({{ round_to('coalesce(returns_by_segment.returns_eur, 0)', 2) }} as decimal(18, 2)) as returns_eur,
        coalesce(sales.orders, 0) as orders
    from sales
    full outer join returns_by_segment
        on
            sales.revenue_date = returns_by_segment.revenue_date
            and sales.country_code = returns_by_segment.country_code
            and sales.channel = returns_by_segment.channel
            and sales.currency = returns_by_segment.currency
),

revalued as (
    select
        segments.*,
        exchange_rates.eur_exchange_rate as reference_eur_exchange_rate
    from segments
    left join exchange_rates
        on
            segments.currency = exchange_rates.currency
            and segments.revenue_date >= exchange_rates.valid_from_date
            and (segments.revenue_date < exchange_rates.valid_to_date or exchange_rates.valid_to_date is null)
),

final as (
    select
        revenue_date,
        country_code,
        channel,
        currency,
        gross_revenue_eur,
        returns_eur,
        -- typed, so PostgreSQL keeps two decimals (numeric - numeric has no fixed scale there)
        cast(gross_revenue_eur - returns_eur as decimal(18, 2)) as net_revenue_eur,
        orders,
        cast(
            case when orders > 0 then round(gross_revenue_eur / orders, 2) end as decimal(18, 2)
        ) as average_order_value_eur,
        cast({{ round_to('net_revenue_local', 2) }} as decimal(18, 2)) as net_revenue_local,
        reference_eur_exchange_rate,
        cast(
            {{ round_to('net_revenue_local * reference_eur_exchange_rate', 2) }} as decimal(18, 2)
        ) as net_revenue_eur_at_reference_rate
    from revalued
)

select * from final
