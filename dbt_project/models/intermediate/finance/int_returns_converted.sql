-- One row per return: the refund converted to EUR at the rate of the order it belongs to (the rate the
-- customer paid), dated by the day the return was booked.
with

returns as (
    select * from {{ ref('stg_shop__returns') }}
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

converted as (
    select
        returns.return_id,
        returns.order_item_id,
        returns.order_id,
        orders.customer_id,
        returns.returned_date,
        orders.channel,
        orders.country_code,
        orders.currency,
        returns.returned_quantity,
        returns.refund_amount,
        returns.refund_amount * orders.eur_exchange_rate as refund_amount_eur,
        returns.loaded_at
    from returns
    inner join orders on returns.order_id = orders.order_id
)

select * from converted
