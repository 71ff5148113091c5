-- Grain: one row per customer account. No direct identifiers reach this table: country only (no
-- e-mail hash, city or birth date). A customer is acquired by their first non-cancelled order.
with

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

refunds as (
    select * from {{ ref('int_returns_converted') }}
),

orders as (
    select
        order_id,
        customer_id,
        min(ordered_at) as ordered_at,
        min(ordered_date) as ordered_date,
        min(channel) as channel,
        sum(line_amount_eur) as order_amount_eur
    from order_lines
    where not is_cancelled
    group by order_id, customer_id
),

ranked_orders as (
    select
        *,
        row_number() over (partition by customer_id order by ordered_at, order_id) as order_rank
    from orders
),

first_orders as (
    select
        customer_id,
        ordered_date as first_order_date,
        channel as first_order_channel
    from ranked_orders
    where order_rank = 1
),

customer_orders as (
    select
        customer_id,
        count(*) as lifetime_orders,
        sum(order_amount_eur) as lifetime_gross_revenue_eur,
        max(ordered_date) as last_order_date
    from orders
    group by customer_id
),

customer_refunds as (
    select
        customer_id,
        sum(refund_amount_eur) as lifetime_returns_eur
    from refunds
    group by customer_id
),

final as (
    select
        customers.customer_id,
        customers.country_code,
        cast(customers.signed_up_at as date) as signed_up_date,
        customers.is_marketing_opted_in,
        first_orders.first_order_date is not null as has_ordered,
        first_orders.first_order_date,
        cast({{ dbt.date_trunc('month', 'first_orders.first_order_date') }} as date) as cohort_month,
        first_orders.first_order_channel,
        customer_orders.last_order_date,
        coalesce(customer_orders.lifetime_orders, 0) as lifetime_orders,
        cast({{ round_to('coalesce(customer_orders.lifetime_gross_revenue_eur, 0)', 2) }} as decimal(18, 2))
            as lifetime_gross_revenue_eur,
        cast({{ round_to('coalesce(customer_refunds.lifetime_returns_eur, 0)', 2) }} as decimal(18, 2))
            as lifetime_returns_eur,
        cast(
            {{ round_to(
                'coalesce(customer_orders.lifetime_gross_revenue_eur, 0)'
                ~ ' - coalesce(customer_refunds.lifetime_returns_eur, 0)',
                2
            ) }} as decimal(18, 2)
        ) as lifetime_net_revenue_eur
    from customers
    left join first_orders on customers.customer_id = first_orders.customer_id
    left join customer_orders on customers.customer_id = customer_orders.customer_id
    left join customer_refunds on customers.customer_id = customer_refunds.customer_id
)

select * from final
