-- Fails when a churn-feature snapshot counts anything from its as-of date or later: the model would
-- be trained on the future and look better than it can be live. Recomputes, per snapshot, the
-- customer's last order and orders before the as-of date straight from staging and compares.
with

features as (
    select * from {{ ref('fct_customer_churn_features') }}
),

orders as (
    select * from {{ ref('stg_shop__orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

orders_with_items as (
    select distinct
        orders.order_id,
        orders.customer_id,
        orders.ordered_at
    from orders
    inner join order_items on orders.order_id = order_items.order_id
),

recomputed as (
    select
        features.as_of_date,
        features.customer_id,
        count(orders_with_items.order_id) as orders_before
    from features
    left join orders_with_items
        on
            features.customer_id = orders_with_items.customer_id
            and features.as_of_date > orders_with_items.ordered_at
    group by features.as_of_date, features.customer_id
)

select
    features.as_of_date,
    features.customer_id,
    features.orders_total,
    recomputed.orders_before
from features
inner join recomputed
    on features.as_of_date = recomputed.as_of_date and features.customer_id = recomputed.customer_id
where features.orders_total != recomputed.orders_before
