-- Order lines of orders that were not cancelled, converted to EUR at the order's own rate.
with

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

converted as (
    select
        order_items.order_item_id,
        order_items.order_id,
        orders.customer_id,
        orders.ordered_date,
        orders.channel,
        orders.country_code,
        orders.currency,
        order_items.quantity,
        order_items.line_amount,
        order_items.line_amount * orders.eur_exchange_rate as line_amount_eur
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    where not orders.is_cancelled
)

select * from converted
