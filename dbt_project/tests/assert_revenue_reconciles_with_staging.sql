-- Fails when the published revenue totals differ from the staging rows they come from: gross revenue
-- of non-cancelled orders, refunds and order counts. A failure means rows were lost or duplicated
-- between staging and the marts (a join fan-out, a filter, an incremental gap).
-- Tolerance: the marts round each day (and each segment-day) to cents, so totals may differ by at most
-- half a cent per rounded row.
--
-- Which days: from the first one the staging rows its tests have not seen yet can change
-- (macros/data_tests_window.sql) to the last. The marts book an order on its ordered_date and a
-- return on its returned_date (never before its order's day), and an incremental build recomputes
-- the days of the rows it loaded, so every mart row a daily build wrote and every staging row it read
-- anew is in that range: a daily build compares its last few days, not the history (at ten million
-- orders the history's sums cost 1.7 s a day). On a full refresh, with `data_tests_scope: all` (the
-- weekly `data_tests_full` DAG) and before any watermark, every row is unaudited: the whole history.
with

-- the earliest day of an unaudited order, of the order of an unaudited line, of an unaudited return
changed_days as (
    select min(new_orders.ordered_date) as changed_date
    from {{ ref('stg_shop__orders') }} as new_orders
    where {{ unaudited_rows('stg_shop__orders', 'new_orders') }}
    union all
    select min(line_orders.ordered_date) as changed_date
    from {{ ref('stg_shop__order_items') }} as new_items
    inner join {{ ref('stg_shop__orders') }} as line_orders on new_items.order_id = line_orders.order_id
    where {{ unaudited_rows('stg_shop__order_items', 'new_items') }}
    union all
    select min(new_returns.returned_date) as changed_date
    from {{ ref('stg_shop__returns') }} as new_returns
    where {{ unaudited_rows('stg_shop__returns', 'new_returns') }}
),

-- null when nothing is unaudited: then no day is compared
checked_from as (
    select min(changed_date) as from_date from changed_days
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
    where ordered_date >= (select checked_from.from_date from checked_from)
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

returns as (
    select * from {{ ref('stg_shop__returns') }}
    where returned_date >= (select checked_from.from_date from checked_from)
),

daily as (
    select * from {{ ref('fct_daily_revenue') }}
    where revenue_date >= (select checked_from.from_date from checked_from)
),

segments as (
    select * from {{ ref('fct_daily_revenue_by_segment') }}
    where revenue_date >= (select checked_from.from_date from checked_from)
),

staging_totals as (
    select
        (
            select coalesce(sum(order_items.line_amount * orders.eur_exchange_rate), 0)
            from order_items
            inner join orders on order_items.order_id = orders.order_id
            where not orders.is_cancelled
        ) as gross_revenue_eur,
        (
            -- every order of a return in range, whatever its day: a return is booked on its own day
            select coalesce(sum(returns.refund_amount * return_orders.eur_exchange_rate), 0)
            from returns
            inner join {{ ref('stg_shop__orders') }} as return_orders on returns.order_id = return_orders.order_id
        ) as returns_eur,
        (
            select count(*) from orders
            where not is_cancelled
        ) as orders
),

mart_totals as (
    select
        'fct_daily_revenue' as mart,
        coalesce(sum(gross_revenue_eur), 0) as gross_revenue_eur,
        coalesce(sum(returns_eur), 0) as returns_eur,
        coalesce(sum(orders), 0) as orders,
        count(*) as rounded_rows
    from daily
    union all
    select
        'fct_daily_revenue_by_segment' as mart,
        coalesce(sum(gross_revenue_eur), 0) as gross_revenue_eur,
        coalesce(sum(returns_eur), 0) as returns_eur,
        coalesce(sum(orders), 0) as orders,
        count(*) as rounded_rows
    from segments
),

differences as (
    select
        mart_totals.mart,
        (select checked_from.from_date from checked_from) as checked_from_date,
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
