-- Grain: one row per experiment x variant x visitor with a session: the visitor's sessions in that
-- variant, whether any of them ended in a purchase, and the first and last session day. The A/B
-- results (fct_experiment_results) aggregate these instead of grouping every session of the history
-- by visitor on each run.
--
-- Incremental: a run recomputes, from all their sessions, the visitors with a session loaded after
-- the newest `loaded_at` the table holds, and replaces all their rows (delete+insert on visitor_hash
-- alone: were a session's variant to change, the visitor's row under the old variant goes too).
-- Other visitors' sessions did not change, so their rows stay as they were; a full refresh gives
-- the same rows (tests/dbt/test_incremental.py).
{{
    config(
        materialized='incremental',
        unique_key='visitor_hash',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

sessions as (
    select * from {{ ref('fct_sessions') }}
),

visitor_sessions as (
    {{ rows_of_keys_loaded_after_this_run('sessions', 'visitor_hash', 'loaded_at', ref('fct_sessions')) }}
),

visitors as (
    select
        experiment_key,
        experiment_variant,
        visitor_hash,
        count(*) as sessions,
        max(case when has_purchased then 1 else 0 end) as has_converted,
        min(session_date) as first_session_date,
        max(session_date) as last_session_date,
        max(loaded_at) as loaded_at
    from visitor_sessions
    group by experiment_key, experiment_variant, visitor_hash
)

select * from visitors
