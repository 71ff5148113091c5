-- Refunds converted to EUR at the rate of the order they belong to, dated by the return.
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
        returns.order_id,
        returns.returned_date,
        orders.channel,
        orders.country_code,
        orders.currency,
        returns.refund_amount,
        returns.refund_amount * orders.eur_exchange_rate as refund_amount_eur
    from returns
    inner join orders on returns.order_id = orders.order_id
)

select * from converted
