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

source as (
    select * from {{ source('shop', 'customers') }}
),

versions as (
    {{ rows_of_keys_loaded_after_this_run('source', 'customer_id', '_loaded_at', source('shop', 'customers')) }}
),

ranked as (
    -- a row_number step rather than `qualify`, which PostgreSQL (and others) lack
    select
        *,
        row_number() over (partition by customer_id order by updated_at desc, _ds desc) as version_rank
    from versions
),

latest as (
    select * from ranked
    where version_rank = 1
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
