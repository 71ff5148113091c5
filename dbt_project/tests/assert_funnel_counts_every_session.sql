-- Fails when the funnel's sessions or purchases do not add up, or when fct_sessions (incremental)
-- lost, duplicated or did not take in a session that received web events.
--
-- The funnel is checked whole against fct_sessions (both are small). fct_sessions is checked
-- against the staging events its tests have not seen yet (the events loaded since the last passing
-- tests): each of their sessions is there exactly once, recomputed after its newest event, and
-- flagged as purchased when a purchase arrived. An incremental build only rewrites such sessions,
-- so that is where one can be lost; counting every session of the history each day cost a scan of
-- all web events. On a full refresh and the weekly `data_tests_scope: all` run, the unaudited
-- events are all events, and the session and purchase counts must equal staging's exactly.
with

new_sessions as (
    select
        session_id,
        max(loaded_at) as loaded_at,
        max(case when event_type = 'purchase' then 1 else 0 end) = 1 as has_purchase_event
    from {{ ref('stg_shop__web_events') }}
    where {{ unaudited_rows('stg_shop__web_events') }}
    group by session_id
),

session_rows as (
    select
        session_id,
        count(*) as session_rows,
        min(loaded_at) as loaded_at,
        bool_or(has_purchased) as has_purchased
    from {{ ref('fct_sessions') }}
    where session_id in (select new_sessions.session_id from new_sessions)
    group by session_id
),

session_problems as (
    select
        'session ' || new_sessions.session_id || ': ' || case
            when session_rows.session_id is null then 'missing from fct_sessions'
            when session_rows.session_rows > 1 then 'in fct_sessions ' || session_rows.session_rows || ' times'
            when session_rows.loaded_at < new_sessions.loaded_at then 'not recomputed after its newest event'
            else 'a purchase event, but not has_purchased'
        end as problem
    from new_sessions
    left join session_rows on new_sessions.session_id = session_rows.session_id
    where
        session_rows.session_id is null
        or session_rows.session_rows > 1
        or session_rows.loaded_at < new_sessions.loaded_at
        or (new_sessions.has_purchase_event and not session_rows.has_purchased)
),

session_counts as (
    select
        count(*) as sessions,
        count(*) filter (where has_purchased) as purchase_sessions
    from {{ ref('fct_sessions') }}
),

funnel_counts as (
    select
        coalesce(sum(sessions), 0) as sessions,
        coalesce(sum(purchase_sessions), 0) as purchase_sessions
    from {{ ref('fct_daily_funnel') }}
),

count_problems as (
    select
        concat(
            'funnel ', funnel_counts.sessions, ' sessions, ', funnel_counts.purchase_sessions,
            ' purchasing; fct_sessions ', session_counts.sessions, ', ', session_counts.purchase_sessions
        ) as problem
    from session_counts
    cross join funnel_counts
    where
        session_counts.sessions != funnel_counts.sessions
        or session_counts.purchase_sessions != funnel_counts.purchase_sessions
    {% if unaudited_rows_condition('stg_shop__web_events') is none -%}
        -- every event is unaudited here: staging's own counts must match exactly
        union all
        select
            concat(
                'staging ', count(*), ' sessions, ', count(*) filter (where has_purchase_event),
                ' purchasing; fct_sessions ', any_value(session_counts.sessions), ', ',
                any_value(session_counts.purchase_sessions)
            ) as problem
        from new_sessions
        cross join session_counts
        having
            count(*) != any_value(session_counts.sessions)
            or count(*) filter (where has_purchase_event) != any_value(session_counts.purchase_sessions)
    {%- endif %}
)

select problem from session_problems
union all
select problem from count_problems
