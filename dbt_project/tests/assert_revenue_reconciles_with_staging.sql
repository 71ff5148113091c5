-- Fails when the published revenue totals differ from the staging rows they come from: gross revenue
-- of non-cancelled orders, refunds and order counts over the whole history. A failure means rows were
-- lost or duplicated between staging and the marts (a join fan-out, a filter, an incremental gap).
-- Tolerance: the marts round each day (and each segment-day) to cents, so totals may differ by at most
-- half a cent per rounded row.
with

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

returns as (
    select * from {{ ref('stg_shop__returns') }}
),

daily as (
    select * from {{ ref('fct_daily_revenue') }}
),

segments as (
    select * from {{ ref('fct_daily_revenue_by_segment') }}
),

staging_totals as (
    select
        (
            select sum(order_items.line_amount * orders.eur_exchange_rate)
            from order_items
            inner join orders on order_items.order_id = orders.order_id
            where not orders.is_cancelled
        ) as gross_revenue_eur,
        (
            select sum(returns.refund_amount * orders.eur_exchange_rate)
            from returns
            inner join orders on returns.order_id = orders.order_id
        ) as returns_eur,
        (
            select count(*) from orders
            where not is_cancelled
        ) as orders
),

mart_totals as (
    select
        'fct_daily_revenue' as mart,
        sum(gross_revenue_eur) as gross_revenue_eur,
        sum(returns_eur) as returns_eur,
        sum(orders) as orders,
        count(*) as rounded_rows
    from daily
    union all
    select
        'fct_daily_revenue_by_segment' as mart,
        sum(gross_revenue_eur) as gross_revenue_eur,
        sum(returns_eur) as returns_eur,
        sum(orders) as orders,
        count(*) as rounded_rows
    from segments
),

differences as (
    select
        mart_totals.mart,
        mart_totals.gross_revenue_eur - staging_totals.gross_revenue_eur as gross_difference,
        mart_totals.returns_eur - staging_totals.returns_eur as returns_difference,
        mart_totals.orders - staging_totals.orders as orders_difference,
        0.005 * mart_totals.rounded_rows + 0.01 as tolerance
    from mart_totals
    cross join staging_totals
)

select *
from differences
where
    abs(gross_difference) > tolerance
    or abs(returns_difference) > tolerance
    or orders_difference != 0
