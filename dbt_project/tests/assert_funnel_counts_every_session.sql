-- Fails when the funnel's sessions or purchases do not add up to the sessions and purchase events in
-- staging: fct_sessions (incremental) lost or duplicated sessions, or purchases were miscounted.
with

web_events as (
    select * from {{ ref('stg_shop__web_events') }}
),

funnel as (
    select * from {{ ref('fct_daily_funnel') }}
),

staging_counts as (
    select
        count(distinct session_id) as sessions,
        count(distinct case when event_type = 'purchase' then session_id end) as purchase_sessions
    from web_events
),

funnel_counts as (
    select
        coalesce(sum(sessions), 0) as sessions,
        coalesce(sum(purchase_sessions), 0) as purchase_sessions
    from funnel
)

select
    staging_counts.sessions as staging_sessions,
    funnel_counts.sessions as funnel_sessions,
    staging_counts.purchase_sessions as staging_purchase_sessions,
    funnel_counts.purchase_sessions as funnel_purchase_sessions
from staging_counts
cross join funnel_counts
where
    staging_counts.sessions is distinct from funnel_counts.sessions
    or staging_counts.purchase_sessions is distinct from funnel_counts.purchase_sessions
