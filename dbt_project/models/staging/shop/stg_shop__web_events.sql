-- One row per web event (insert-only; a re-sent event counts once, its latest extract wins). The
-- visitor's cookie id is pseudonymised (keyed hash).
--
-- A table, built incrementally, unlike the other staging views: it is the largest source (about
-- eight events per order) and three models and two tests read it, so deduplicating it in a view
-- re-ranked the whole history for every reader on every run. A run takes the events loaded after
-- the newest `loaded_at` the table holds, ranks every raw version of those event ids (so a reload
-- of an older day picks the same version a rebuild would) and replaces them by event_id.
-- `--full-refresh` rebuilds it from `raw`: after an erasure (governance/dsr.py does), a reload
-- that removes source rows, or a new PII_HASH_KEY.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'web_events'), 'event_id', order_by='_ds desc') }}
),

renamed as (
    select
        event_id,
        session_id,
        {{ pseudonymise('visitor_id') }} as visitor_hash,
        customer_id,
        event_type,
        experiment_key,
        experiment_variant,
        order_id,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
