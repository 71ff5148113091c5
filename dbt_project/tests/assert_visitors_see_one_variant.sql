-- Fails when a visitor was assigned to more than one variant of the same experiment. The A/B results
-- count each visitor once per variant, so such a visitor would be counted in both arms and the test's
-- independence assumption would break: fix the assignment before trusting fct_experiment_results.
--
-- Both CTEs read the staging table itself: a CTE read twice is materialised by DuckDB, a copy of
-- every web event on each run, where the unaudited-rows filter reads only the newest row groups.
with

-- a daily build checks the visitors with newly loaded events (macros/data_tests_window.sql), over
-- all of their events
visitors as (
    select distinct new_events.visitor_hash from {{ ref('stg_shop__web_events') }} as new_events
    where {{ unaudited_rows('stg_shop__web_events', 'new_events') }}
),

assignments as (
    select
        web_events.experiment_key,
        web_events.visitor_hash,
        count(distinct web_events.experiment_variant) as variants
    from {{ ref('stg_shop__web_events') }} as web_events
    where web_events.visitor_hash in (select visitors.visitor_hash from visitors)
    group by web_events.experiment_key, web_events.visitor_hash
)

select * from assignments
where variants > 1
