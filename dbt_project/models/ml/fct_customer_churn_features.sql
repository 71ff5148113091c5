-- Grain: one row per active customer per as-of date: customers with an order in the
-- `churn_active_days` days before D (a customer gone longer has churned already; keeping them
-- would make every snapshot grow with the whole history). Features for as-of date D use only
-- events with a timestamp before D 00:00 UTC (orders, order lines, returns, web sessions), so a
-- model trained on them never sees the future. As-of dates: every Monday once the shop has `churn_min_history_days`
-- of orders, plus the day after the last order day (the snapshot the live model scores).
-- Label: churned = no order in [D, D + churn_label_days); null until that window has been observed
-- completely (D + churn_label_days <= the day after the last order day).
-- Orders count whatever their later status: a cancellation is an update after D that D cannot know.
--
-- How (it must stay linear at ten million orders): events are summed per customer and day, and
-- one cumulative window gives the customer's running totals at the end of every event day. Each
-- snapshot then looks up (ASOF join) the totals at the last event day before D, before D - 30,
-- before D - 90 and through the label's last day; a window's sum is the difference of two
-- lookups. Joining each snapshot to all of its customer's earlier events instead grows with
-- snapshots x history; a range window per feature over a timeline of events and snapshots (the
-- earlier version) computed 27 windows for every event row only to keep the snapshot rows.
--
-- The lookups must run as DuckDB's ASOF join operator (sort once, merge): the hooks set
-- asof_loop_join_threshold to 0 for this model. DuckDB estimates a CTE's rows at about 0 and below
-- the threshold (default 64 left-side rows) rewrites an ASOF join into a nested loop over every
-- pair of a customer's rows: at 1M orders that took over 12 minutes instead of 20 seconds.
--
-- Incremental: a snapshot whose label is complete is final (its features only read days before D,
-- its label window is over). A run deletes the rest (recent Mondays and the previous scoring
-- snapshot) and computes every snapshot after the newest complete one. `--full-refresh` rebuilds all.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "set asof_loop_join_threshold = 0",
            "{% if is_incremental() %}delete from {{ this }} where not has_complete_label{% endif %}",
        ],
        post_hook="reset asof_loop_join_threshold"
    )
}}

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
        orders.ordered_date,
        orders.channel,
        sum(order_items.quantity) as units,
        -- decimal, so sums do not depend on the order rows are added in (rebuilds stay identical)
        sum(cast(order_items.line_amount * orders.eur_exchange_rate as decimal(18, 4))) as order_amount_eur
    from orders
    inner join order_items on orders.order_id = order_items.order_id
    group by orders.order_id, orders.customer_id, orders.ordered_at, orders.ordered_date, orders.channel
),

order_days as (
    select
        customer_id,
        ordered_date as event_date,
        count(*) as orders,
        sum(units) as units,
        sum(order_amount_eur) as revenue_eur,
        count(*) filter (where channel = 'web') as web_orders,
        count(*) filter (where channel = 'mobile') as mobile_orders,
        count(*) filter (where channel = 'marketplace') as marketplace_orders,
        max(ordered_at) as last_ordered_at
    from order_totals
    group by customer_id, ordered_date
),

return_days as (
    select
        orders.customer_id,
        cast(returns.returned_at as date) as event_date,
        count(*) as return_lines,
        sum(returns.returned_quantity) as returned_units
    from returns
    inner join orders on returns.order_id = orders.order_id
    group by orders.customer_id, cast(returns.returned_at as date)
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

session_days as (
    select
        customer_id,
        cast(started_at as date) as event_date,
        count(*) as sessions,
        max(started_at) as last_session_at,
        arg_max(experiment_variant, started_at) as experiment_variant
    from customer_sessions
    group by customer_id, cast(started_at as date)
),

customer_order_span as (
    select
        customer_id,
        min(event_date) as first_order_date,
        max(event_date) as last_order_date
    from order_days
    group by customer_id
),

bounds as (
    select
        min(ordered_date) as first_order_date,
        max(ordered_date) as last_order_date
    from orders
),

-- Incremental runs: the complete snapshots the pre-hook left are final; the dates after them are built.
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
    where
        (extract(isodow from spine.day) = 1 or cast(spine.day as date) = bounds.last_order_date + 1)
    {% if is_incremental() -%}
        and cast(spine.day as date) > (
            select coalesce(max(this_run.as_of_date), cast('1900-01-01' as date))
            from {{ this }} as this_run
            where this_run.has_complete_label
        )
    {%- endif %}
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
    inner join customer_order_span
        on
            as_of_dates.as_of_date > customer_order_span.first_order_date
            -- the last day a customer can still be active; the exact test follows the windows
            and as_of_dates.as_of_date
            <= customer_order_span.last_order_date + interval {{ var('churn_active_days') }} day
    inner join customers on customer_order_span.customer_id = customers.customer_id
),

-- Every event measure of a customer and day on one row (union by name fills in the nulls).
event_days as (
    select
        customer_id,
        event_date,
        sum(orders) as orders,
        sum(units) as units,
        sum(revenue_eur) as revenue_eur,
        sum(web_orders) as web_orders,
        sum(mobile_orders) as mobile_orders,
        sum(marketplace_orders) as marketplace_orders,
        max(last_ordered_at) as last_ordered_at,
        sum(return_lines) as return_lines,
        sum(returned_units) as returned_units,
        sum(sessions) as sessions,
        max(last_session_at) as last_session_at,
        arg_max(experiment_variant, last_session_at) as experiment_variant
    from (
        select * from order_days
        union all by name
        select * from return_days
        union all by name
        select * from session_days
    ) as events
    group by customer_id, event_date
),

-- The customer's running totals at the end of each event day: one cheap cumulative frame.
running_totals as (
    select
        customer_id,
        event_date,
        sum(orders) over through_day as orders,
        sum(units) over through_day as units,
        sum(revenue_eur) over through_day as revenue_eur,
        sum(web_orders) over through_day as web_orders,
        sum(mobile_orders) over through_day as mobile_orders,
        sum(marketplace_orders) over through_day as marketplace_orders,
        max(last_ordered_at) over through_day as last_ordered_at,
        sum(return_lines) over through_day as return_lines,
        sum(returned_units) over through_day as returned_units,
        sum(sessions) over through_day as sessions,
        max(last_session_at) over through_day as last_session_at,
        arg_max(experiment_variant, last_session_at) over through_day as experiment_variant
    from event_days
    window through_day as (
        partition by customer_id order by event_date rows between unbounded preceding and current row
    )
),

-- Each snapshot meets its customer's totals at the last event day before D (ASOF join): the
-- features over all days before D. Customers with no order in the active days are dropped here,
-- before the lookups of the windows.
before_as_of as (
    select
        snapshots.*,
        totals.orders as orders_total,
        totals.units as units_total,
        totals.revenue_eur as revenue_eur_total,
        totals.web_orders,
        totals.mobile_orders,
        totals.marketplace_orders,
        totals.last_ordered_at,
        totals.return_lines as return_lines_total,
        totals.returned_units as returned_units_total,
        totals.sessions as sessions_total,
        totals.last_session_at,
        totals.experiment_variant
    from snapshots
    asof left join running_totals as totals
        on
            snapshots.customer_id = totals.customer_id
            and snapshots.as_of_date > totals.event_date
    where totals.last_ordered_at >= snapshots.as_of_date - interval {{ var('churn_active_days') }} day
),

-- A window's sum is the difference of two running totals: the 30 (90) days before D are the days
-- before D minus the days before D - 30 (D - 90); the label's days [D, D + label days) are the
-- days up to D + label days - 1 minus the days before D.
active as (
    select
        before_as_of.*,
        before_as_of.orders_total - coalesce(before_30d.orders, 0) as orders_30d,
        before_as_of.orders_total - coalesce(before_90d.orders, 0) as orders_90d,
        before_as_of.units_total - coalesce(before_30d.units, 0) as units_30d,
        before_as_of.revenue_eur_total - coalesce(before_30d.revenue_eur, 0) as revenue_eur_30d,
        before_as_of.revenue_eur_total - coalesce(before_90d.revenue_eur, 0) as revenue_eur_90d,
        before_as_of.marketplace_orders - coalesce(before_30d.marketplace_orders, 0) as marketplace_orders_30d,
        coalesce(before_as_of.return_lines_total, 0) - coalesce(before_90d.return_lines, 0) as returns_90d,
        coalesce(before_as_of.sessions_total, 0) - coalesce(before_30d.sessions, 0) as sessions_30d,
        coalesce(through_label.orders, 0) - before_as_of.orders_total as orders_in_label_window
    from before_as_of
    asof left join running_totals as before_30d
        on
            before_as_of.customer_id = before_30d.customer_id
            and cast(before_as_of.as_of_date - interval 30 day as date) > before_30d.event_date
    asof left join running_totals as before_90d
        on
            before_as_of.customer_id = before_90d.customer_id
            and cast(before_as_of.as_of_date - interval 90 day as date) > before_90d.event_date
    asof left join running_totals as through_label
        on
            before_as_of.customer_id = through_label.customer_id
            and cast(before_as_of.as_of_date + interval {{ var('churn_label_days') - 1 }} day as date)
            >= through_label.event_date
),

final as (
    select
        active.as_of_date,
        active.customer_id,
        active.is_latest,
        active.has_complete_label,
        active.country_code,
        -- the channel of most orders before D, ties by name (marketplace, mobile, web); none without orders
        case
            when coalesce(active.orders_total, 0) = 0 then 'none'
            when
                active.marketplace_orders >= active.mobile_orders
                and active.marketplace_orders >= active.web_orders
                then 'marketplace'
            when active.mobile_orders >= active.web_orders then 'mobile'
            else 'web'
        end as main_channel,
        coalesce(active.experiment_variant, 'none') as experiment_variant,
        date_diff('day', cast(active.signed_up_at as date), active.as_of_date) as tenure_days,
        date_diff(
            'day', cast(coalesce(active.last_ordered_at, active.signed_up_at) as date), active.as_of_date
        ) as days_since_last_order,
        cast(coalesce(active.orders_total, 0) as bigint) as orders_total,
        cast(coalesce(active.orders_30d, 0) as bigint) as orders_30d,
        cast(coalesce(active.orders_90d, 0) as bigint) as orders_90d,
        cast(round(coalesce(active.revenue_eur_total, 0), 2) as double) as revenue_eur_total,
        cast(round(coalesce(active.revenue_eur_90d, 0), 2) as double) as revenue_eur_90d,
        cast(
            round(coalesce(active.revenue_eur_total / active.orders_total, 0), 2) as double
        ) as average_order_value_eur,
        cast(coalesce(active.units_total / active.orders_total, 0) as double) as units_per_order,
        cast(coalesce(active.marketplace_orders / active.orders_total, 0) as double) as marketplace_order_share,
        -- the same over the last 30 days: null without a recent order (the current mix, for drift)
        cast(active.units_30d / nullif(active.orders_30d, 0) as double) as units_per_order_30d,
        cast(
            round(active.revenue_eur_30d / nullif(active.orders_30d, 0), 2) as double
        ) as average_order_value_eur_30d,
        cast(
            coalesce(active.marketplace_orders_30d, 0) / nullif(active.orders_30d, 0) as double
        ) as marketplace_order_share_30d,
        cast(coalesce(active.returns_90d, 0) as bigint) as returns_90d,
        cast(
            coalesce(active.returned_units_total / nullif(active.units_total, 0), 0) as double
        ) as returns_rate,
        cast(coalesce(active.sessions_total, 0) as bigint) as sessions_total,
        cast(coalesce(active.sessions_30d, 0) as bigint) as sessions_30d,
        date_diff(
            'day',
            cast(coalesce(active.last_session_at, active.signed_up_at) as date),
            active.as_of_date
        ) as days_since_last_session,
        case
            when not active.has_complete_label then null
            else coalesce(active.orders_in_label_window, 0) = 0
        end as is_churned
    from active
)

select * from final
