-- Grain: one row per customer per as-of date. Features for as-of date D use only events with a
-- timestamp before D 00:00 UTC (orders, order lines, returns, web sessions), so a model trained on
-- them never sees the future. As-of dates: every Monday once the shop has `churn_min_history_days`
-- of orders, plus the day after the last order day (the snapshot the live model scores).
-- Label: churned = no order in [D, D + churn_label_days); null until that window has been observed
-- completely (D + churn_label_days <= the day after the last order day).
-- Orders count whatever their later status: a cancellation is an update after D that D cannot know.
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

web_events as (
    select * from {{ ref('stg_shop__web_events') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

order_totals as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.channel,
        sum(order_items.quantity) as units,
        -- decimal, so sums do not depend on the order rows are added in (rebuilds stay identical)
        sum(cast(order_items.line_amount * orders.eur_exchange_rate as decimal(18, 4))) as order_amount_eur
    from orders
    inner join order_items on orders.order_id = order_items.order_id
    group by orders.order_id, orders.customer_id, orders.ordered_at, orders.channel
),

customer_returns as (
    select
        orders.customer_id,
        returns.returned_at,
        returns.returned_quantity
    from returns
    inner join orders on returns.order_id = orders.order_id
),

customer_sessions as (
    select
        customer_id,
        session_id,
        min(occurred_at) as started_at,
        min(experiment_variant) as experiment_variant
    from web_events
    where customer_id is not null
    group by customer_id, session_id
),

bounds as (
    select
        min(ordered_date) as first_order_date,
        max(ordered_date) as last_order_date
    from orders
),

as_of_dates as (
    select
        cast(spine.day as date) as as_of_date,
        cast(spine.day as date) = cast(bounds.last_order_date + interval 1 day as date) as is_latest,
        cast(spine.day + interval {{ var('churn_label_days') }} day as date)
        <= cast(bounds.last_order_date + interval 1 day as date) as has_complete_label
    from bounds,
        generate_series(
            cast(bounds.first_order_date + interval {{ var('churn_min_history_days') }} day as timestamp),
            cast(bounds.last_order_date + interval 1 day as timestamp),
            interval 1 day
        ) as spine (day)
    where extract(isodow from spine.day) = 1 or cast(spine.day as date) = bounds.last_order_date + 1
),

snapshots as (
    select
        as_of_dates.as_of_date,
        as_of_dates.is_latest,
        as_of_dates.has_complete_label,
        customers.customer_id,
        customers.country_code,
        customers.signed_up_at
    from as_of_dates
    inner join customers on as_of_dates.as_of_date > customers.signed_up_at
),

order_features as (
    select
        snapshots.as_of_date,
        snapshots.customer_id,
        count(*) as orders_total,
        count(*) filter (where order_totals.ordered_at >= snapshots.as_of_date - interval 30 day) as orders_30d,
        count(*) filter (where order_totals.ordered_at >= snapshots.as_of_date - interval 90 day) as orders_90d,
        max(order_totals.ordered_at) as last_ordered_at,
        sum(order_totals.units) as units_total,
        sum(order_totals.order_amount_eur) as revenue_eur_total,
        coalesce(
            sum(order_totals.order_amount_eur) filter (
                where order_totals.ordered_at >= snapshots.as_of_date - interval 90 day
            ),
            0
        ) as revenue_eur_90d,
        sum(order_totals.units) filter (
            where order_totals.ordered_at >= snapshots.as_of_date - interval 30 day
        ) as units_30d,
        sum(order_totals.order_amount_eur) filter (
            where order_totals.ordered_at >= snapshots.as_of_date - interval 30 day
        ) as revenue_eur_30d,
        avg(case when order_totals.channel = 'marketplace' then 1.0 else 0.0 end) as marketplace_order_share,
        avg(case when order_totals.channel = 'marketplace' then 1.0 else 0.0 end) filter (
            where order_totals.ordered_at >= snapshots.as_of_date - interval 30 day
        ) as marketplace_order_share_30d,
        mode(order_totals.channel order by order_totals.channel) as main_channel
    from snapshots
    inner join order_totals
        on
            snapshots.customer_id = order_totals.customer_id
            and snapshots.as_of_date > order_totals.ordered_at
    group by snapshots.as_of_date, snapshots.customer_id
),

return_features as (
    select
        snapshots.as_of_date,
        snapshots.customer_id,
        sum(customer_returns.returned_quantity) as returned_units_total,
        count(*) filter (
            where customer_returns.returned_at >= snapshots.as_of_date - interval 90 day
        ) as returns_90d
    from snapshots
    inner join customer_returns
        on
            snapshots.customer_id = customer_returns.customer_id
            and snapshots.as_of_date > customer_returns.returned_at
    group by snapshots.as_of_date, snapshots.customer_id
),

session_features as (
    select
        snapshots.as_of_date,
        snapshots.customer_id,
        count(*) as sessions_total,
        count(*) filter (where customer_sessions.started_at >= snapshots.as_of_date - interval 30 day)
            as sessions_30d,
        max(customer_sessions.started_at) as last_session_at,
        arg_max(customer_sessions.experiment_variant, customer_sessions.started_at) as experiment_variant
    from snapshots
    inner join customer_sessions
        on
            snapshots.customer_id = customer_sessions.customer_id
            and snapshots.as_of_date > customer_sessions.started_at
    group by snapshots.as_of_date, snapshots.customer_id
),

label_orders as (
    select distinct
        snapshots.as_of_date,
        snapshots.customer_id
    from snapshots
    inner join order_totals
        on
            snapshots.customer_id = order_totals.customer_id
            and snapshots.as_of_date <= order_totals.ordered_at
            and order_totals.ordered_at < snapshots.as_of_date + interval {{ var('churn_label_days') }} day
    where snapshots.has_complete_label
),

final as (
    select
        snapshots.as_of_date,
        snapshots.customer_id,
        snapshots.is_latest,
        snapshots.has_complete_label,
        snapshots.country_code,
        coalesce(order_features.main_channel, 'none') as main_channel,
        coalesce(session_features.experiment_variant, 'none') as experiment_variant,
        date_diff('day', cast(snapshots.signed_up_at as date), snapshots.as_of_date) as tenure_days,
        date_diff(
            'day', cast(coalesce(order_features.last_ordered_at, snapshots.signed_up_at) as date), snapshots.as_of_date
        ) as days_since_last_order,
        coalesce(order_features.orders_total, 0) as orders_total,
        coalesce(order_features.orders_30d, 0) as orders_30d,
        coalesce(order_features.orders_90d, 0) as orders_90d,
        cast(round(coalesce(order_features.revenue_eur_total, 0), 2) as double) as revenue_eur_total,
        cast(round(coalesce(order_features.revenue_eur_90d, 0), 2) as double) as revenue_eur_90d,
        cast(
            round(coalesce(order_features.revenue_eur_total / order_features.orders_total, 0), 2) as double
        ) as average_order_value_eur,
        cast(coalesce(order_features.units_total / order_features.orders_total, 0) as double) as units_per_order,
        cast(coalesce(order_features.marketplace_order_share, 0) as double) as marketplace_order_share,
        -- the same over the last 30 days: null without a recent order (the current mix, for drift)
        cast(order_features.units_30d / nullif(order_features.orders_30d, 0) as double) as units_per_order_30d,
        cast(
            round(order_features.revenue_eur_30d / nullif(order_features.orders_30d, 0), 2) as double
        ) as average_order_value_eur_30d,
        cast(order_features.marketplace_order_share_30d as double) as marketplace_order_share_30d,
        coalesce(return_features.returns_90d, 0) as returns_90d,
        cast(
            coalesce(return_features.returned_units_total / nullif(order_features.units_total, 0), 0) as double
        ) as returns_rate,
        coalesce(session_features.sessions_total, 0) as sessions_total,
        coalesce(session_features.sessions_30d, 0) as sessions_30d,
        date_diff(
            'day',
            cast(coalesce(session_features.last_session_at, snapshots.signed_up_at) as date),
            snapshots.as_of_date
        ) as days_since_last_session,
        case
            when not snapshots.has_complete_label then null
            else label_orders.customer_id is null
        end as is_churned
    from snapshots
    left join order_features
        on snapshots.as_of_date = order_features.as_of_date and snapshots.customer_id = order_features.customer_id
    left join return_features
        on snapshots.as_of_date = return_features.as_of_date and snapshots.customer_id = return_features.customer_id
    left join session_features
        on snapshots.as_of_date = session_features.as_of_date and snapshots.customer_id = session_features.customer_id
    left join label_orders
        on snapshots.as_of_date = label_orders.as_of_date and snapshots.customer_id = label_orders.customer_id
)

select * from final
