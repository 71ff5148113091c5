-- One row per published reference rate, with the days it stays in force: until the next published
-- rate of the currency (weekends and holidays keep Friday's rate; the last rate stays open-ended).
-- EUR is 1 by definition, whatever the API says.
with

exchange_rates as (
    select * from {{ ref('stg_marketing_api__exchange_rates') }}
),

foreign_rates as (
    select
        currency,
        rate_date as valid_from_date,
        lead(rate_date) over (partition by currency order by rate_date) as valid_to_date,
        eur_exchange_rate,
        false as is_fixed_rate
    from exchange_rates
    where currency != 'EUR'
),

euro as (
    select
        'EUR' as currency,
        cast('1900-01-01' as date) as valid_from_date,
        cast(null as date) as valid_to_date,
        1.0 as eur_exchange_rate,
        true as is_fixed_rate
),

carried_forward as (
    select * from foreign_rates
    union all
    select * from euro
)

select * from carried_forward
