-- One row per order line: the latest version, amounts in the order currency.
with

source as (
    select * from {{ source('shop', 'order_items') }}
),

ranked as (
    select
        *,
        row_number() over (partition by order_item_id order by updated_at desc, _ds desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
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
