-- One row per return: the latest version, refunds in the order currency.
with

source as (
    select * from {{ source('shop', 'returns') }}
),

ranked as (
    select
        *,
        row_number() over (partition by return_id order by updated_at desc, _ds desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
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
