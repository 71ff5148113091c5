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
-- partition_by is Spark's only: there a daily run rewrites the days it touches, not the whole
-- table (macros/portable/spark_incremental.sql); DuckDB's delete+insert needs no partitions.
{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        partition_by=('occurred_date' if target.type == 'spark' else none)
    )
}}

with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'web_events'), 'event_id', order_by='_ds desc') }}
),

-- The keyed hash is computed once per visitor, not once per event (a visitor has a few sessions of
-- several events each, and the hash was most of the model's time). The visitors are read from the
-- source's rows the run takes (every version of the keys in `latest`), not from `latest`: a CTE
-- read twice is copied whole by DuckDB.
visitors as (
    select
        visitor_id,
        {{ pseudonymise('visitor_id') }} as visitor_hash
    from (
        select distinct source_rows.visitor_id
        from {{ source('shop', 'web_events') }} as source_rows
        {% if is_incremental() -%}
            where source_rows.event_id in (
                select loaded.event_id from {{ source('shop', 'web_events') }} as loaded
                where {{ loaded_after_this_run('loaded._loaded_at') }}
            )
        {%- endif %}
    ) as distinct_visitors
),

renamed as (
    select
        latest.event_id,
        latest.session_id,
        visitors.visitor_hash,
        latest.customer_id,
        latest.event_type,
        latest.experiment_key,
        latest.experiment_variant,
        latest.order_id,
        latest.occurred_at,
        cast(latest.occurred_at as date) as occurred_date,
        latest._loaded_at as loaded_at
    from latest
    -- `is not distinct from`: a missing visitor id hashes like any other value, as it did per event
    left join visitors on latest.visitor_id is not distinct from visitors.visitor_id
)

select * from renamed
