-- One row per return: the latest version, refunds in the order currency.
--
-- A table, built incrementally like stg_shop__orders: as a view, every reader (the revenue marts
-- and their reconciliation tests, several times a run) re-ranked all versions of every return. A
-- run ranks every raw version of the returns that received a row loaded after the newest
-- `loaded_at` the table holds, and replaces those returns. `--full-refresh` rebuilds it from `raw`.
{{
    config(
        materialized='incremental',
        unique_key='return_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'returns'), 'return_id') }}
),

renamed as (
    select
        return_id,
        order_item_id,
        order_id,
        quantity as returned_quantity,
        refund_cents / 100.0 as refund_amount,
        reason as return_reason,
        returned_at,
        cast(returned_at as date) as returned_date,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
