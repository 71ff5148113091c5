-- Grain: one row per customer account. No direct identifiers reach this table: country only (no
-- e-mail hash, city or birth date). A customer is acquired by their first non-cancelled order.
--
-- Incremental: a run recomputes, from all their rows, the customers whose account, order lines or
-- refunds received a row loaded after the newest `loaded_at` in the table, and replaces them by
-- customer_id (rebuilding everyone every day grew with the history).
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

all_customers as (
    select * from {{ ref('stg_shop__customers') }}
),

all_order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

all_refunds as (
    select * from {{ ref('int_returns_converted') }}
),

{% if is_incremental() -%}
    -- read from the inputs themselves, not the CTEs above: a CTE read twice is copied whole by DuckDB
    changed_customers as (
        select loaded.customer_id from {{ ref('stg_shop__customers') }} as loaded
        where {{ loaded_after_this_run('loaded.loaded_at') }}
        union
        select loaded.customer_id from {{ ref('fct_order_lines') }} as loaded
        where {{ loaded_after_this_run('loaded.loaded_at') }}
        union
        select loaded.customer_id from {{ ref('int_returns_converted') }} as loaded
        where {{ loaded_after_this_run('loaded.loaded_at') }}
    ),
{%- endif %}

customers as (
    select * from all_customers
    {% if is_incremental() -%}
        where customer_id in (select changed_customers.customer_id from changed_customers)
    {%- endif %}
),

order_lines as (
    select * from all_order_lines
    {% if is_incremental() -%}
        where customer_id in (select changed_customers.customer_id from changed_customers)
    {%- endif %}
),

refunds as (
    select * from all_refunds
    {% if is_incremental() -%}
        where customer_id in (select changed_customers.customer_id from changed_customers)
    {%- endif %}
),

-- the watermark: the newest load of anything that went into the customer's row
customer_loads as (
    select
        customer_id,
        max(loaded_at) as loaded_at
    from (
        select
            customer_id,
            loaded_at
        from order_lines
        union all
        select
            customer_id,
            loaded_at
        from refunds
    ) as loads
    group by customer_id
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
        ) as lifetime_net_revenue_eur,
        greatest(customers.loaded_at, customer_loads.loaded_at) as loaded_at
    from customers
    left join first_orders on customers.customer_id = first_orders.customer_id
    left join customer_orders on customers.customer_id = customer_orders.customer_id
    left join customer_refunds on customers.customer_id = customer_refunds.customer_id
    left join customer_loads on customers.customer_id = customer_loads.customer_id
)

select * from final
