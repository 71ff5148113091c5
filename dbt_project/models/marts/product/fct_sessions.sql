-- Grain: one row per web session, with its experiment variant and how far down the funnel it got.
-- Funnel flags are monotone: a session that checked out also counts as having added to cart.
--
-- Incremental: a run recomputes, from all their events, the sessions that received an event loaded
-- after the newest `loaded_at` already in the table, and replaces them by session_id.
-- partition_by is Spark's only: there a daily run rewrites the days it touches, not the whole
-- table (macros/portable/spark_incremental.sql); DuckDB's delete+insert needs no partitions.
{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        partition_by=('session_date' if target.type == 'spark' else none)
    )
}}

with

web_events as (
    select * from {{ ref('stg_shop__web_events') }}
),

-- unused on a first build, which reads the table in buckets instead
session_events as (  -- noqa: ST03
    {{ rows_of_keys_loaded_after_this_run('web_events', 'session_id', 'loaded_at', ref('stg_shop__web_events')) }}
),

-- A first build (or full refresh) aggregates the sessions in `fct_sessions_build_buckets` buckets
-- of session_id, one after the other: at ten million orders a year (12M sessions, 79M events) one
-- aggregate of every session, with its text states (the 64-character visitor hash), ran out of
-- DuckDB's 3 GB on two threads; in 4 buckets it took 21 s, in 8 buckets 26 s. A daily run
-- recomputes only the sessions with new events: one aggregate.
{%- set buckets = 1 if is_incremental() else var('fct_sessions_build_buckets') %}

sessions as (
    {%- for bucket in range(buckets) %}
        {%- if not loop.first %}
            union all
        {%- endif %}
        select
            session_id,
            min(visitor_hash) as visitor_hash,
            max(customer_id) as customer_id,
            min(experiment_key) as experiment_key,
            min(experiment_variant) as experiment_variant,
            min(occurred_at) as started_at,
            max(occurred_at) as ended_at,
            count(*) as events,
            sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
            max(case when event_type in ('add_to_cart', 'checkout', 'purchase') then 1 else 0 end)
            = 1 as has_added_to_cart,
            max(case when event_type in ('checkout', 'purchase') then 1 else 0 end) = 1 as has_checked_out,
            max(case when event_type = 'purchase' then 1 else 0 end) = 1 as has_purchased,
            max(order_id) as order_id,
            max(loaded_at) as loaded_at
        {#- every event on a first build: the table itself, not a CTE read once per bucket (DuckDB
            would materialise that CTE, a copy of all events) #}
        from {{ 'session_events' if buckets == 1 else ref('stg_shop__web_events') }}
        {%- if buckets > 1 %}
            where {{ hash_bucket('session_id', buckets) }} = {{ bucket }}
        {%- endif %}
        group by session_id
    {%- endfor %}
),

final as (
    select
        session_id,
        visitor_hash,
        customer_id,
        cast(started_at as date) as session_date,
        started_at,
        ended_at,
        experiment_key,
        experiment_variant,
        events,
        page_views,
        has_added_to_cart,
        has_checked_out,
        has_purchased,
        order_id,
        loaded_at
    from sessions
)

select * from final
