-- One row per order: the latest version (status moves placed -> shipped -> delivered, or cancelled).
with

source as (
    select * from {{ source('shop', 'orders') }}
),

ranked as (
    -- a row_number step rather than `qualify`, which PostgreSQL (and others) lack
    select
        *,
        row_number() over (partition by order_id order by updated_at desc, _ds desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
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
