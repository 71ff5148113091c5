-- One row per customer: the latest version. E-mail is pseudonymised (keyed hash); name, phone and
-- street address are dropped; the birth date is generalised to its year.
--
-- A table, built incrementally like stg_shop__orders: as a view, every reader (dim_customers, the
-- churn features, the relationship tests of orders and order lines) re-ranked all versions of
-- every account on every run. A run ranks every raw version of the accounts that received a row
-- loaded after the newest `loaded_at` the table holds, and replaces those accounts. `--full-refresh`
-- rebuilds it from `raw` (after an erasure, governance/dsr.py does; after a new PII_HASH_KEY).
{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
with

latest as (
    -- a re-sent or updated row counts once: its latest version
    {{ latest_versions_loaded_after_this_run(source('shop', 'customers'), 'customer_id') }}
),

renamed as (
    select
        customer_id,
        {{ pseudonymise('email') }} as email_hash,
        country_code,
        city,
        cast({{ dbt.date_trunc('year', 'birth_date') }} as date) as birth_year_date,
        marketing_opt_in as is_marketing_opted_in,
        created_at as signed_up_at,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
