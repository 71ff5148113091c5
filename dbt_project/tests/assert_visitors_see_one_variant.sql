-- Fails when a visitor was assigned to more than one variant of the same experiment. The A/B results
-- count each visitor once per variant, so such a visitor would be counted in both arms and the test's
-- independence assumption would break: fix the assignment before trusting fct_experiment_results.
with

web_events as (
    select * from {{ ref('stg_shop__web_events') }}
),

-- a daily build checks the visitors with newly loaded events (macros/data_tests_window.sql), over
-- all of their events
visitors as (
    select distinct web_events.visitor_hash from web_events
    where {{ unaudited_rows('stg_shop__web_events', 'web_events') }}
),

assignments as (
    select
        experiment_key,
        visitor_hash,
        count(distinct experiment_variant) as variants
    from web_events
    where visitor_hash in (select visitors.visitor_hash from visitors)
    group by experiment_key, visitor_hash
)

select * from assignments
where variants > 1
