-- One row per order line: the latest version, amounts in the order currency.
--
-- A table, built incrementally like stg_shop__web_events: as a view, every reader (the facts,
-- the churn features, the reconciliation tests) re-ranked all versions of every order line on
-- every run. A run ranks every raw version of the keys that received a row loaded after the newest
-- `loaded_at` the table holds, and replaces those keys. `--full-refresh` rebuilds it from `raw`
-- (after an erasure, governance/dsr.py does; after a reload that removes source rows).
{{
    config(
        materialized='incremental',
        unique_key='order_item_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'order_items'), 'order_item_id') }}
),

renamed as (
    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price_cents / 100.0 as unit_price,
        quantity * unit_price_cents / 100.0 as line_amount,
        created_at,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
