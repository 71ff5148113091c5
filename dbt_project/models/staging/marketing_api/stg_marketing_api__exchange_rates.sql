-- One row per business day and currency: the latest published reference rate (EUR per unit).
with

source as (
    select *
    from {{ source_if_loaded('marketing_api', 'exchange_rates', {
        'rate_date': 'date', 'currency': 'varchar', 'eur_rate': type_double(),
        '_ds': 'date', '_run_id': 'varchar', '_loaded_at': 'timestamp'
    }) }}
),

ranked as (
    select
        *,
        row_number() over (partition by rate_date, currency order by _ds desc, _loaded_at desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        rate_date,
        currency,
        cast(eur_rate as {{ type_double() }}) as eur_exchange_rate,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
