{#-
    The rows of fct_customer_churn_features (see the model for the grain, the windows and the
    incremental rules) for at most `dates_per_batch` as-of dates: the earliest ones the table does
    not hold when `only_missing`, else the earliest ones. The model builds one batch; its post-hook
    (`build_remaining_churn_snapshots`) inserts the others batch by batch, so a first build or a
    full refresh over a long history sorts a few weeks of snapshots at a time instead of all of
    them at once (at ten million orders a year, all at once spilled more than the 10 GB cap).
    Each batch carries the totals from before its window in (`carried`), so batches add up to the
    same rows as one statement would.
    `as_of_date` builds that one date (whether the table holds it or not), and `customer_part`
    ([k, n]) only its customers whose key hashes to k of n (`build_remaining_churn_snapshots`
    splits a large date's customers this way); both for one date only.
-#}
{% macro churn_features(dates_per_batch, only_missing, as_of_date=none, customer_part=none) -%}
{#- one date: its windows are filters of one grouped aggregate (`window_sums` below) -#}
{%- set one_date = dates_per_batch == 1 -%}
with

returns as (
    select * from {{ ref('stg_shop__returns') }}
),

-- web sessions from the sessions fact (incremental, one row per session), not regrouped here from
-- every web event of the history on each run
sessions as (
    select * from {{ ref('fct_sessions') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

-- orders per customer and day (incremental: only the days with new orders or lines are recomputed)
order_days as (
    select * from {{ ref('int_customer_order_days') }}
),

return_days as (
    select
        orders.customer_id,
        cast(returns.returned_at as date) as event_date,
        count(*) as return_lines,
        sum(returns.returned_quantity) as returned_units
    from returns
    -- orders are read where needed, not through one CTE: a CTE read twice is copied whole by DuckDB
    inner join {{ ref('stg_shop__orders') }} as orders on returns.order_id = orders.order_id
    group by orders.customer_id, cast(returns.returned_at as date)
),

-- a session counts from its start (its first event, signed in or not), for the customer it belongs to
session_days as (
    select
        customer_id,
        session_date as event_date,
        count(*) as sessions,
        max(started_at) as last_session_at,
        arg_max(experiment_variant, started_at) as experiment_variant
    from sessions
    where customer_id is not null
    group by customer_id, session_date
),

customer_order_span as (
    select
        customer_id,
        min(event_date) as first_order_date,
        max(event_date) as last_order_date
    from order_days
    group by customer_id
),

-- The as-of dates this statement builds: the first `dates_per_batch` of those the table lacks
-- (all of them on a first build, in batches). The snapshots the table holds are final.
as_of_dates as (
    select candidates.*
    from ({{ churn_as_of_dates() }}) as candidates
    {% if as_of_date is not none -%}
        where candidates.as_of_date = cast('{{ as_of_date }}' as date)
    {%- elif only_missing -%}
        -- distinct first: the dates, not the table's rows (one per customer and date), meet the spine
        where candidates.as_of_date not in (select distinct this_run.as_of_date from {{ this }} as this_run)
    {%- endif %}
    order by candidates.as_of_date
    limit {{ dates_per_batch }}
),

-- Events before `recent_from` are carried in as per-customer totals instead of being windowed
-- again; events from `recent_until` on are after every label window of these dates.
cutoff as (
    select
        cast(
            min(as_of_dates.as_of_date) - interval {{ [90, var('churn_active_days')] | max }} day as date
        ) as recent_from,
        cast(max(as_of_dates.as_of_date) + interval {{ var('churn_label_days') }} day as date) as recent_until
    from as_of_dates
),

{% if not one_date -%}
snapshots as (
    -- (customers without a customer row are dropped later, by the join in `attributed`)
    select
        as_of_dates.as_of_date,
        customer_order_span.customer_id
    from as_of_dates
    inner join customer_order_span
        on
            as_of_dates.as_of_date > customer_order_span.first_order_date
            -- the last day a customer can still be active; the exact test follows the windows
            and as_of_dates.as_of_date
            <= customer_order_span.last_order_date + interval {{ var('churn_active_days') }} day
),

{% endif -%}
{% if one_date -%}
-- One as-of date D: the windows of the timeline below, as filters of one grouped aggregate per
-- customer over the events from `recent_from` (no sort; the same sums, nulls included: a packed
-- sum over the frame before D is 0, not null, where the window's frame holds the snapshot's own
-- row). A daily run builds its one or two new dates this way: on 1M orders a year the windows
-- of one date cost 5.2 s of the statement's 8.6 s of CPU.
-- One date reads each input where it is needed, filtered before it is grouped (the recent days
-- per customer and day; the carried totals per customer of this date's snapshots only), not the
-- whole-table CTEs above, which DuckDB would copy whole and group over the history on each run.
-- (The windows keep those: in a batch of a first build at ten million orders, the inlined
-- aggregates ran beside the window's sort and went past DuckDB's memory limit.)
recent_order_days as (
    select * from {{ ref('int_customer_order_days') }}
    where
        event_date >= (select cutoff.recent_from from cutoff)
        and event_date < (select cutoff.recent_until from cutoff)
        {{- churn_customer_part('customer_id', customer_part) }}
),

recent_return_days as (
    select
        orders.customer_id,
        cast(returns.returned_at as date) as event_date,
        count(*) as return_lines,
        sum(returns.returned_quantity) as returned_units
    from {{ ref('stg_shop__returns') }} as returns
    inner join {{ ref('stg_shop__orders') }} as orders on returns.order_id = orders.order_id
    where
        cast(returns.returned_at as date) >= (select cutoff.recent_from from cutoff)
        and cast(returns.returned_at as date) < (select cutoff.recent_until from cutoff)
        {{- churn_customer_part('orders.customer_id', customer_part) }}
    group by orders.customer_id, cast(returns.returned_at as date)
),

recent_session_days as (
    select
        customer_id,
        session_date as event_date,
        count(*) as sessions,
        max(started_at) as last_session_at,
        arg_max(experiment_variant, started_at) as experiment_variant
    from {{ ref('fct_sessions') }}
    where
        customer_id is not null
        and session_date >= (select cutoff.recent_from from cutoff)
        and session_date < (select cutoff.recent_until from cutoff)
        {{- churn_customer_part('customer_id', customer_part) }}
    group by customer_id, session_date
),

-- the customers with an order in the `churn_active_days` before the date, the active ones (`active`
-- below is the exact test), found among those days instead of the whole history
active_customers as (
    select distinct
        as_of_dates.as_of_date,
        order_days.customer_id
    from {{ ref('int_customer_order_days') }} as order_days
    cross join as_of_dates
    where
        order_days.event_date >= as_of_dates.as_of_date - interval {{ var('churn_active_days') }} day
        and order_days.event_date < as_of_dates.as_of_date
        {{- churn_customer_part('order_days.customer_id', customer_part) }}
),

-- with their attributes: joined to these narrow rows, not to the wide ones after the sums (at ten
-- million orders DuckDB built that join's hash table on the ~800 MB of summed rows: 10 s of the
-- statement's 15, and its memory at DuckDB's limit). A customer without a customer row is dropped
-- here, as by the join in `attributed` on the windowed path.
snapshots as (
    select
        active_customers.as_of_date,
        active_customers.customer_id,
        customers.country_code,
        customers.signed_up_at
    from active_customers
    inner join customers on active_customers.customer_id = customers.customer_id
),

recent_events as (
    select
        customer_id,
        event_date,
        orders,
        units,
        revenue_eur,
        web_orders,
        mobile_orders,
        marketplace_orders,
        last_ordered_at
    from recent_order_days
    union all by name
    select
        customer_id,
        event_date,
        return_lines,
        returned_units
    from recent_return_days
    union all by name
    select
        customer_id,
        event_date,
        sessions,
        last_session_at,
        experiment_variant
    from recent_session_days
),

recent_packed as (
    select
        recent_events.customer_id,
        date_diff('day', recent_events.event_date, as_of_dates.as_of_date) as days_before,
        recent_events.orders,
        recent_events.revenue_eur,
        recent_events.last_ordered_at,
        recent_events.last_session_at,
        recent_events.experiment_variant,
        {{ packed_counts(['recent_events.units', 'recent_events.web_orders', 'recent_events.mobile_orders']) }}
            as units_web_mobile,
        {{ packed_counts(
            ['recent_events.marketplace_orders', 'recent_events.returned_units', 'recent_events.sessions']
        ) }} as marketplace_returned_sessions,
        {{ packed_counts(['recent_events.orders', 'recent_events.units', 'recent_events.marketplace_orders']) }}
            as orders_units_marketplace,
        {{ packed_counts(['recent_events.orders', 'recent_events.return_lines', 'recent_events.sessions']) }}
            as orders_returns_sessions
    from recent_events
    cross join as_of_dates
),

recent_sums as (
    select
        customer_id,
        sum(orders) filter (where days_before > 0) as orders_total,
        max(last_ordered_at) filter (where days_before > 0) as last_ordered_at,
        coalesce(sum(units_web_mobile) filter (where days_before > 0), 0) as units_web_mobile,
        sum(revenue_eur) filter (where days_before > 0) as revenue_eur_total,
        sum(revenue_eur) filter (where days_before between 1 and 30) as revenue_eur_30d,
        sum(revenue_eur) filter (where days_before between 1 and 90) as revenue_eur_90d,
        coalesce(sum(marketplace_returned_sessions) filter (where days_before > 0), 0)
            as marketplace_returned_sessions,
        sum(orders_units_marketplace) filter (where days_before between 1 and 30) as orders_units_marketplace_30d,
        sum(orders_returns_sessions) filter (where days_before between 1 and 90) as orders_returns_sessions_90d,
        sum(orders_returns_sessions) filter (where days_before between 1 and 30) as orders_returns_sessions_30d,
        max(last_session_at) filter (where days_before > 0) as last_session_at,
        arg_max(experiment_variant, last_session_at) filter (where days_before > 0) as experiment_variant,
        sum(orders) filter (where days_before between {{ 1 - var('churn_label_days') }} and 0) as orders_in_label_window
    from recent_packed
    group by customer_id
),

-- every snapshot has a row, as on the timeline (a customer without events from `recent_from` too)
window_sums as (
    select
        snapshots.customer_id,
        snapshots.as_of_date,
        snapshots.country_code,
        snapshots.signed_up_at,
        true as is_snapshot,
        recent_sums.* exclude (customer_id, units_web_mobile, marketplace_returned_sessions),
        coalesce(recent_sums.units_web_mobile, 0) as units_web_mobile,
        coalesce(recent_sums.marketplace_returned_sessions, 0) as marketplace_returned_sessions
    from snapshots
    left join recent_sums on snapshots.customer_id = recent_sums.customer_id
),

{% else -%}
-- One timeline per customer: a row per snapshot and a row per day with an event. Snapshot rows
-- carry no measures (union by name fills in nulls); windows over the timeline do the rest. The
-- snapshot's attributes are joined after the windows (`attributed`), so the sort carries only
-- the measures.
timeline as (
    select
        customer_id,
        as_of_date as event_date,
        true as is_snapshot
    from snapshots
    union all by name
    select
        customer_id,
        event_date,
        false as is_snapshot,
        orders,
        units,
        revenue_eur,
        web_orders,
        mobile_orders,
        marketplace_orders,
        last_ordered_at
    from order_days
    where
        event_date >= (select cutoff.recent_from from cutoff)
        and event_date < (select cutoff.recent_until from cutoff)
    union all by name
    select
        customer_id,
        event_date,
        false as is_snapshot,
        return_lines,
        returned_units
    from return_days
    where
        event_date >= (select cutoff.recent_from from cutoff)
        and event_date < (select cutoff.recent_until from cutoff)
    union all by name
    select
        customer_id,
        event_date,
        false as is_snapshot,
        sessions,
        last_session_at,
        experiment_variant
    from session_days
    where
        event_date >= (select cutoff.recent_from from cutoff)
        and event_date < (select cutoff.recent_until from cutoff)
),

-- Each day takes two positions on its customer's timeline: its snapshot first (even), its events
-- after (odd). One sort on the position serves every window: a snapshot's rows before it are the
-- events before D, and day offsets become position offsets (the 30 days before D are positions
-- 2*D-59 to 2*D-1, the label window's days D to D+29 positions 2*D+1 to 2*D+59).
positioned as (
    select
        customer_id,
        event_date,
        is_snapshot,
        date_diff('day', date '1970-01-01', event_date) * 2 + case when is_snapshot then 0 else 1 end
            as timeline_position,
        orders,
        revenue_eur,
        last_ordered_at,
        last_session_at,
        experiment_variant,
        -- counts summed by one window aggregate each group (see `packed_counts`)
        {{ packed_counts(['units', 'web_orders', 'mobile_orders']) }} as units_web_mobile,
        {{ packed_counts(['marketplace_orders', 'returned_units', 'sessions']) }} as marketplace_returned_sessions,
        {{ packed_counts(['orders', 'units', 'marketplace_orders']) }} as orders_units_marketplace,
        {{ packed_counts(['orders', 'return_lines', 'sessions']) }} as orders_returns_sessions
    from timeline
),

window_sums as (
    select
        customer_id,
        event_date as as_of_date,
        is_snapshot,
        sum(orders) over before_d as orders_total,
        max(last_ordered_at) over before_d as last_ordered_at,
        sum(units_web_mobile) over before_d as units_web_mobile,
        sum(revenue_eur) over before_d as revenue_eur_total,
        sum(revenue_eur) over last_30d as revenue_eur_30d,
        sum(revenue_eur) over last_90d as revenue_eur_90d,
        sum(marketplace_returned_sessions) over before_d as marketplace_returned_sessions,
        sum(orders_units_marketplace) over last_30d as orders_units_marketplace_30d,
        sum(orders_returns_sessions) over last_90d as orders_returns_sessions_90d,
        sum(orders_returns_sessions) over last_30d as orders_returns_sessions_30d,
        max(last_session_at) over before_d as last_session_at,
        arg_max(experiment_variant, last_session_at) over before_d as experiment_variant,
        sum(orders) over label_window as orders_in_label_window
    from positioned
    window
        -- Every row before the snapshot (its own row carries no measures): a running total, the
        -- cheapest frame DuckDB computes (a third of the cost of a bounded RANGE frame here). The
        -- RANGE frame `unbounded preceding and 1 day preceding` this replaced also went wrong with
        -- DuckDB 2.0.1 at ten million orders a year (summed `orders` to 0 on one to three of 85
        -- million rows); the data tests on orders_30d <= orders_90d <= orders_total watch for that.
        before_d as (
            partition by customer_id order by timeline_position
            rows between unbounded preceding and current row
        ),
        last_30d as (
            partition by customer_id order by timeline_position
            range between {{ 2 * 30 - 1 }} preceding and 1 preceding
        ),
        last_90d as (
            partition by customer_id order by timeline_position
            range between {{ 2 * 90 - 1 }} preceding and 1 preceding
        ),
        label_window as (
            partition by customer_id order by timeline_position
            range between 1 following and {{ 2 * var('churn_label_days') - 1 }} following
        )
    qualify is_snapshot
),

{% endif -%}
-- A packed sum is 0 where the frame has rows but none of that count (a separate sum was null):
-- every use below treats the two alike (totals are coalesced to 0, ratios divide by nullif(.., 0)).
windowed as (
    select
        customer_id,
        as_of_date,
        {% if one_date -%}
            country_code,
            signed_up_at,
        {% endif -%}
        is_snapshot,
        orders_total,
        {{ unpacked_count('orders_units_marketplace_30d', 0) }} as orders_30d,
        {{ unpacked_count('orders_returns_sessions_90d', 0) }} as orders_90d,
        last_ordered_at,
        {{ unpacked_count('units_web_mobile', 0) }} as units_total,
        {{ unpacked_count('orders_units_marketplace_30d', 1) }} as units_30d,
        revenue_eur_total,
        revenue_eur_30d,
        revenue_eur_90d,
        {{ unpacked_count('units_web_mobile', 1) }} as web_orders,
        {{ unpacked_count('units_web_mobile', 2) }} as mobile_orders,
        {{ unpacked_count('marketplace_returned_sessions', 0) }} as marketplace_orders,
        {{ unpacked_count('orders_units_marketplace_30d', 2) }} as marketplace_orders_30d,
        {{ unpacked_count('marketplace_returned_sessions', 1) }} as returned_units_total,
        {{ unpacked_count('orders_returns_sessions_90d', 1) }} as returns_90d,
        {{ unpacked_count('marketplace_returned_sessions', 2) }} as sessions_total,
        {{ unpacked_count('orders_returns_sessions_30d', 2) }} as sessions_30d,
        last_session_at,
        experiment_variant,
        orders_in_label_window
    from window_sums
),

-- Per customer of this batch's snapshots, the totals of everything before `recent_from` (none for
-- the first batch of a full build). Every event in it is older than every event on the timeline, so a maximum or a
-- latest value from the timeline, where there is one, wins.
{% if one_date -%}
carried_events as (
    select
        customer_id,
        orders,
        units,
        revenue_eur,
        web_orders,
        mobile_orders,
        marketplace_orders,
        last_ordered_at
    from {{ ref('int_customer_order_days') }}
    where
        event_date < (select cutoff.recent_from from cutoff)
        and customer_id in (select snapshots.customer_id from snapshots)
    union all by name
    select
        orders.customer_id,
        sum(returns.returned_quantity) as returned_units
    from {{ ref('stg_shop__returns') }} as returns
    inner join {{ ref('stg_shop__orders') }} as orders on returns.order_id = orders.order_id
    where
        cast(returns.returned_at as date) < (select cutoff.recent_from from cutoff)
        and orders.customer_id in (select snapshots.customer_id from snapshots)
    group by orders.customer_id
    union all by name
    select
        customer_id,
        count(*) as sessions,
        max(started_at) as last_session_at,
        arg_max(experiment_variant, started_at) as experiment_variant
    from {{ ref('fct_sessions') }}
    where
        session_date < (select cutoff.recent_from from cutoff)
        and customer_id in (select snapshots.customer_id from snapshots)
    group by customer_id
),

{% else -%}
carried_events as (
    select
        customer_id,
        orders,
        units,
        revenue_eur,
        web_orders,
        mobile_orders,
        marketplace_orders,
        last_ordered_at
    from order_days
    where event_date < (select cutoff.recent_from from cutoff)
    union all by name
    select
        customer_id,
        returned_units
    from return_days
    where event_date < (select cutoff.recent_from from cutoff)
    union all by name
    select
        customer_id,
        sessions,
        last_session_at,
        experiment_variant
    from session_days
    where event_date < (select cutoff.recent_from from cutoff)
),

{% endif -%}
carried as (
    select
        customer_id,
        sum(orders) as orders_total,
        max(last_ordered_at) as last_ordered_at,
        sum(units) as units_total,
        sum(revenue_eur) as revenue_eur_total,
        sum(web_orders) as web_orders,
        sum(mobile_orders) as mobile_orders,
        sum(marketplace_orders) as marketplace_orders,
        sum(returned_units) as returned_units_total,
        sum(sessions) as sessions_total,
        max(last_session_at) as last_session_at,
        arg_max(experiment_variant, last_session_at) as experiment_variant
    from carried_events
    where customer_id in (select snapshots.customer_id from snapshots)
    group by customer_id
),

-- the window's total plus the carried one: null only when both are (no such event before D)
combined as (
    select
        windowed.* replace (
            {% for column in ['orders_total', 'units_total', 'revenue_eur_total', 'web_orders', 'mobile_orders',
                              'marketplace_orders', 'returned_units_total', 'sessions_total'] -%}
                {{ sum_of_nullables('windowed.' ~ column, 'carried.' ~ column) }} as {{ column }},
            {% endfor -%}
            coalesce(windowed.last_ordered_at, carried.last_ordered_at) as last_ordered_at,
            coalesce(windowed.last_session_at, carried.last_session_at) as last_session_at,
            coalesce(windowed.experiment_variant, carried.experiment_variant) as experiment_variant
        )
    from windowed
    left join carried on windowed.customer_id = carried.customer_id
),

-- the snapshot's attributes, joined after the windows so their sort carries only the measures
-- (one date has the customer's already: see `snapshots`)
attributed as (
    select
        combined.*,
        as_of_dates.is_latest,
        as_of_dates.has_complete_label
        {%- if not one_date %},
            customers.country_code,
            customers.signed_up_at
        {%- endif %}
    from combined
    inner join as_of_dates on combined.as_of_date = as_of_dates.as_of_date
    {%- if not one_date %}
        inner join customers on combined.customer_id = customers.customer_id
    {%- endif %}
),

active as (
    select * from attributed
    where last_ordered_at >= as_of_date - interval {{ var('churn_active_days') }} day
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
{%- endmacro %}


{#- Every as-of date of the churn snapshots: each Monday once the shop has `churn_min_history_days`
    of orders, and the day after the last order day (the latest), with its two flags. -#}
{% macro churn_as_of_dates() -%}
    select
        cast(spine.day as date) as as_of_date,
        cast(spine.day as date) = cast(bounds.last_order_date + interval 1 day as date) as is_latest,
        cast(spine.day + interval {{ var('churn_label_days') }} day as date)
        <= cast(bounds.last_order_date + interval 1 day as date) as has_complete_label
    from
        (
            select
                min(ordered_date) as first_order_date,
                max(ordered_date) as last_order_date
            from {{ ref('stg_shop__orders') }}
        ) as bounds,
        generate_series(
            cast(bounds.first_order_date + interval {{ var('churn_min_history_days') }} day as timestamp),
            cast(bounds.last_order_date + interval 1 day as timestamp),
            interval 1 day
        ) as spine (day)
    where extract(isodow from spine.day) = 1 or cast(spine.day as date) = bounds.last_order_date + 1
{%- endmacro %}


{#- How many as-of dates the next statement builds when `missing` are left: one, by the grouped
    aggregate, once at most `churn_dates_one_by_one` are left (a daily run); else a batch of
    `dates_per_batch` by the windows (a first build, a full refresh, a long catch-up). -#}
{% macro churn_batch_size(missing, dates_per_batch) -%}
    {{- return(1 if missing <= var('churn_dates_one_by_one') else dates_per_batch) -}}
{%- endmacro %}


{#- How many as-of dates a first build or a full refresh builds: all of them. -#}
{% macro churn_dates_left() -%}
    {#- 0 while parsing, and where the orders are not built yet (a compile against an empty warehouse) -#}
    {%- if not execute or load_relation(ref('stg_shop__orders')) is none -%}
        {{- return(0) -}}
    {%- endif -%}
    {%- set left_sql -%}
        select count(*) from ({{ churn_as_of_dates() }}) as candidates
    {%- endset -%}
    {{- return(run_query(left_sql).columns[0].values()[0] | int) -}}
{%- endmacro %}


{#- Post-hook of fct_customer_churn_features: insert, statement by statement, the as-of dates the
    model's own statement left for later (sized by `churn_batch_size`): on a first build or a full
    refresh those after its first batch, on an incremental run every date it builds. A date built
    on its own whose active customers are more than `churn_customers_per_statement` is built in
    as many statements, each for a share of its customers (by a hash of their key), to keep one
    statement's aggregates within DuckDB's memory limit. The dates are listed when the hook is rendered, after
    the model's own statement: the batches before the last dates take the earliest missing ones
    when they run, as before. -#}
{% macro build_remaining_churn_snapshots(dates_per_batch) -%}
    {%- if execute -%}
        {%- set missing = churn_missing_dates() -%}
        {%- set plan = namespace(left=missing | length) -%}
        {%- for _ in missing -%}
            {%- if plan.left > 0 -%}
                {%- set size = churn_batch_size(plan.left, dates_per_batch) | int -%}
                {%- if size == 1 -%}
                    {%- set as_of_date = missing[(missing | length) - plan.left] -%}
                    {%- set parts = churn_customer_parts(as_of_date) -%}
                    {%- for part in range(parts) %}
            insert into {{ this }}
            {{ churn_features(1, only_missing=true, as_of_date=as_of_date,
                customer_part=([part, parts] if parts > 1 else none)) }};
                    {%- endfor -%}
                {%- else %}
            insert into {{ this }}
            {{ churn_features(size, only_missing=true) }};
                {%- endif -%}
                {%- set plan.left = plan.left - size -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- The as-of dates the table lacks, earliest first, as 'YYYY-MM-DD' strings. -#}
{% macro churn_missing_dates() -%}
    {%- set missing_sql -%}
        select cast(candidates.as_of_date as varchar) from ({{ churn_as_of_dates() }}) as candidates
        where candidates.as_of_date not in (select distinct this_run.as_of_date from {{ this }} as this_run)
        order by candidates.as_of_date
    {%- endset -%}
    {{- return(run_query(missing_sql).columns[0].values() | list) -}}
{%- endmacro %}


{#- In how many statements one as-of date is built: its active customers (an order in the
    `churn_active_days` before it) per `churn_customers_per_statement`, at least one. -#}
{% macro churn_customer_parts(as_of_date) -%}
    {%- set active_sql -%}
        select count(distinct customer_id) from {{ ref('int_customer_order_days') }}
        where
            event_date >= cast('{{ as_of_date }}' as date) - interval {{ var('churn_active_days') }} day
            and event_date < cast('{{ as_of_date }}' as date)
    {%- endset -%}
    {%- set active = run_query(active_sql).columns[0].values()[0] | int -%}
    {%- set per_statement = var('churn_customers_per_statement') | int -%}
    {{- return([1, ((active + per_statement - 1) / per_statement) | int] | max) -}}
{%- endmacro %}


{#- `and` the customer's key hashes to part k of n, for `customer_part` [k, n]; nothing without one. -#}
{% macro churn_customer_part(column, customer_part) -%}
    {%- if customer_part is not none %}
        and hash({{ column }}) % {{ customer_part[1] }} = {{ customer_part[0] }}
    {%- endif -%}
{%- endmacro %}


{#- Up to three non-negative counts as one HUGEINT, 42 bits each, so one window aggregate sums
    them all: a window's cost is per aggregate, and summing the counts of a batch this way took
    a 1M-order batch's WINDOW operator from 5.8 to 4.0 s (the statement's CPU 7.7 -> 6.3 s, same
    rows). A sum stays exact while each field's total is below 2^42: every value is checked to be
    below 2^28 (a customer's count for one day; larger is bad data and fails the build with this
    message), and a frame holds at most three event rows a day from `recent_from`, fewer than
    2^14 unless one batch spans more than about fifteen years of as-of dates. -#}
{% macro packed_counts(columns) -%}
    {%- if columns | length > 3 -%}
        {{ exceptions.raise_compiler_error("packed_counts holds at most three counts, got " ~ columns) }}
    {%- endif -%}
    {%- for column in columns -%}
        (cast(
            case
                when {{ column }} is null then 0
                when {{ column }} >= 0 and {{ column }} < 268435456 then {{ column }}
                else error('churn features: {{ column }} of one customer and day outside [0, 2^28): ' || {{ column }})
            end as hugeint
        ) << {{ 42 * loop.index0 }}){{ ' + ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{#- Field `index` (0-2) of a `packed_counts` sum, as a BIGINT (null when the frame had no rows). -#}
{% macro unpacked_count(packed, index) -%}
    cast(({{ packed }} >> {{ 42 * index }}) & 4398046511103 as bigint)
{%- endmacro %}
