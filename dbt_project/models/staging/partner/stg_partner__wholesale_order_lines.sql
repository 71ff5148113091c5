-- One row per reseller order line (order_ref x sku): from the latest file that carried it.
with

source as (
    select *
    from {{ partner_source('partner_wholesale_orders', {
        'order_ref': 'varchar', 'order_date': 'date', 'sku': 'varchar', 'quantity': 'bigint',
        'unit_price_eur': 'decimal(12, 2)', 'country_code': 'varchar', 'ship_to_city': 'varchar',
        '_file_sha256': 'varchar', '_file_name': 'varchar', '_file_row': 'bigint',
        '_ds': 'date', '_run_id': 'varchar', '_loaded_at': 'timestamp'
    }) }}
),

ranked as (
    select
        *,
        row_number() over (partition by order_ref, sku order by _ds desc, _file_row desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        order_ref as wholesale_order_ref,
        sku,
        order_date,
        quantity,
        unit_price_eur,
        quantity * unit_price_eur as line_amount_eur,
        country_code,
        ship_to_city,
        _ds as file_date,
        _file_sha256 as file_sha256,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
