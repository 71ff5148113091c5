-- Fails when a churn-feature snapshot counts anything from its as-of date or later: the model would
-- be trained on the future and look better than it can be live. Recomputes, per snapshot, the
-- customer's orders before the as-of date straight from staging and compares. An ASOF join (each
-- snapshot meets its customer's last order before D and the running count there) keeps the check
-- linear in rows at ten million orders, and is another way to count than the model's windows.
-- tagged like the model it tests (models/ml is DuckDB-only): builds on other engines leave both out
{{ config(tags=["duckdb_only"]) }}

with

-- a daily build checks the snapshots it rewrote (macros/data_tests_window.sql), against each of
-- their customers' whole order history
features as (
    select * from {{ ref('fct_customer_churn_features') }}
    where {{ unaudited_rows('fct_customer_churn_features') }}
),

-- only the checked snapshots' customers, before the join: not every order of the history
orders as (
    select * from {{ ref('stg_shop__orders') }}
    where customer_id in (select features.customer_id from features)
),

-- the orders with at least one line (the model counts no order without lines): a semi-join, so
-- no order is repeated per line and nothing needs a distinct over the history's orders
orders_with_items as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at
    from orders
    where orders.order_id in (select order_items.order_id from {{ ref('stg_shop__order_items') }} as order_items)
),

running_counts as (
    select
        customer_id,
        ordered_at,
        -- range frame: orders sharing a timestamp all carry the count including each other
        count(*) over (
            partition by customer_id order by ordered_at range between unbounded preceding and current row
        ) as orders_so_far
    from orders_with_items
)

select
    features.as_of_date,
    features.customer_id,
    features.orders_total,
    coalesce(running_counts.orders_so_far, 0) as orders_before
from features
asof left join running_counts
    on
        features.customer_id = running_counts.customer_id
        and features.as_of_date > running_counts.ordered_at
where features.orders_total != coalesce(running_counts.orders_so_far, 0)
