-- Grain: one row per customer and UTC day with an order: the day's orders (whatever their later
-- status), units, revenue in EUR, orders per channel and the last order time. The churn features
-- window and carry these instead of joining every order of the history to its lines on each run.
--
-- Incremental: a run recomputes, from all their orders and lines, the customer-days with an order
-- or a line loaded after the newest `loaded_at` the table holds, and replaces them. An order's
-- customer, day, channel and rate never change (later versions change its status), so the other
-- days stay as they were; a full refresh gives the same rows (tests/dbt/test_incremental.py).
{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'event_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

{% if is_incremental() -%}
    -- read from the inputs themselves, not the CTEs above: a CTE read twice is copied whole by DuckDB
    changed_days as (
        select distinct
            changed.customer_id,
            changed.ordered_date
        from {{ ref('stg_shop__orders') }} as changed
        where changed.order_id in (
            select loaded.order_id from {{ ref('stg_shop__orders') }} as loaded
            where {{ loaded_after_this_run('loaded.loaded_at') }}
            union
            select loaded.order_id from {{ ref('stg_shop__order_items') }} as loaded
            where {{ loaded_after_this_run('loaded.loaded_at') }}
        )
    ),
{%- endif %}

day_orders as (
    select orders.* from orders
    {% if is_incremental() -%}
        inner join changed_days
            on orders.customer_id = changed_days.customer_id and orders.ordered_date = changed_days.ordered_date
    {%- endif %}
),

order_totals as (
    select
        day_orders.order_id,
        day_orders.customer_id,
        day_orders.ordered_at,
        day_orders.ordered_date,
        day_orders.channel,
        sum(order_items.quantity) as units,
        -- decimal, so sums do not depend on the order rows are added in (rebuilds stay identical)
        sum(cast(order_items.line_amount * day_orders.eur_exchange_rate as decimal(18, 4))) as order_amount_eur,
        greatest(max(day_orders.loaded_at), max(order_items.loaded_at)) as loaded_at
    from day_orders
    inner join order_items on day_orders.order_id = order_items.order_id
    group by
        day_orders.order_id, day_orders.customer_id, day_orders.ordered_at, day_orders.ordered_date, day_orders.channel
),

final as (
    select
        customer_id,
        ordered_date as event_date,
        count(*) as orders,
        sum(units) as units,
        sum(order_amount_eur) as revenue_eur,
        count(*) filter (where channel = 'web') as web_orders,
        count(*) filter (where channel = 'mobile') as mobile_orders,
        count(*) filter (where channel = 'marketplace') as marketplace_orders,
        max(ordered_at) as last_ordered_at,
        max(loaded_at) as loaded_at
    from order_totals
    group by customer_id, ordered_date
)

select * from final
