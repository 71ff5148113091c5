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

source as (
    select * from {{ source('shop', 'web_events') }}
),

versions as (
    {{ rows_of_keys_loaded_after_this_run('source', 'event_id', '_loaded_at', source('shop', 'web_events')) }}
),

ranked as (
    -- a re-sent event must not count twice
    select
        *,
        row_number() over (partition by event_id order by _ds desc) as version_rank
    from versions
),

deduplicated as (
    select * from ranked
    where version_rank = 1
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
    from deduplicated
)

select * from renamed
