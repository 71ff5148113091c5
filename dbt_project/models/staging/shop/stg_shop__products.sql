-- One row per product: the latest version, prices in EUR.
with

source as (
    select * from {{ source('shop', 'products') }}
),

ranked as (
    select
        *,
        row_number() over (partition by product_id order by updated_at desc, _ds desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        product_id,
        sku,
        product_name,
        category,
        unit_price_eur_cents / 100.0 as unit_price_eur,
        is_active,
        created_at,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
