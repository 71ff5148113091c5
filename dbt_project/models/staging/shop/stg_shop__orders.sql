-- One row per order: the latest version (status moves placed -> shipped -> delivered, or cancelled).
--
-- A table, built incrementally like stg_shop__web_events: as a view, every reader (the facts,
-- the churn features, the reconciliation tests) re-ranked all versions of every order on every
-- run. A run ranks every raw version of the keys that received a row loaded after the newest
-- `loaded_at` the table holds, and replaces those keys. `--full-refresh` rebuilds it from `raw`
-- (after an erasure, governance/dsr.py does; after a reload that removes source rows).
-- partition_by is Spark's only: there a daily run rewrites the days it touches, not the whole
-- table (macros/portable/spark_incremental.sql); DuckDB's delete+insert needs no partitions.
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        partition_by=('ordered_date' if target.type == 'spark' else none)
    )
}}
with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'orders'), 'order_id') }}
),

renamed as (
    select
        order_id,
        customer_id,
        order_status,
        order_status = 'cancelled' as is_cancelled,
        channel,
        country_code,
        currency,
        eur_exchange_rate,
        ordered_at,
        cast(ordered_at as date) as ordered_date,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
