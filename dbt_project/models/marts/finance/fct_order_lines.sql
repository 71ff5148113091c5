-- Grain: one row per order line, of every order (cancelled ones flagged), amounts in the order
-- currency and in EUR at the rate fixed at checkout.
--
-- Incremental: a run re-selects only the lines whose order or line had a version loaded after the
-- newest `loaded_at` already in the table (a day loaded for the first time, a reloaded day, an order
-- that changed status) and replaces them by order_item_id. Source rows deleted by a reload are not
-- seen: rebuild with --full-refresh after a reload that removes rows, or after changing columns.
{{
    config(
        materialized='incremental',
        unique_key='order_item_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

{% if is_incremental() -%}
    -- Orders with a newly loaded version of the order or of one of its lines: only they are joined
    -- (joining every order to every line to filter afterwards grew with the history).
    changed_orders as (
        select loaded.order_id from {{ ref('stg_shop__orders') }} as loaded
        where {{ loaded_after_this_run('loaded.loaded_at') }}
        union
        select loaded.order_id from {{ ref('stg_shop__order_items') }} as loaded
        where {{ loaded_after_this_run('loaded.loaded_at') }}
    ),
{%- endif %}

orders as (
    select * from {{ ref('stg_shop__orders') }}
    {% if is_incremental() -%}
        where order_id in (select changed_orders.order_id from changed_orders)
    {%- endif %}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
    {% if is_incremental() -%}
        where order_id in (select changed_orders.order_id from changed_orders)
    {%- endif %}
),

order_lines as (
    select
        order_items.order_item_id,
        order_items.order_id,
        orders.customer_id,
        order_items.product_id,
        orders.ordered_at,
        orders.ordered_date,
        orders.order_status,
        orders.is_cancelled,
        orders.channel,
        orders.country_code,
        orders.currency,
        orders.eur_exchange_rate,
        order_items.quantity,
        order_items.unit_price,
        order_items.line_amount,
        order_items.line_amount * orders.eur_exchange_rate as line_amount_eur,
        greatest(orders.loaded_at, order_items.loaded_at) as loaded_at
    from order_items
    inner join orders on order_items.order_id = orders.order_id
),

changed as (
    select *
    from order_lines
    {% if is_incremental() -%}
        where {{ loaded_after_this_run('loaded_at') }}
    {%- endif %}
)

select * from changed
