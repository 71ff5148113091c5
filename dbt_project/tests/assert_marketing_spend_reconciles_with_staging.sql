-- Fails when the EUR marketing spend of a day differs from the staging spend rows converted at the
-- rate in force that day (beyond cent rounding per channel), or when a staging spend day is missing
-- from the mart: CAC and ROAS would then rest on the wrong spend.
with

spends as (
    select * from {{ ref('stg_marketing_api__campaign_spends') }}
),

exchange_rates as (
    select * from {{ ref('int_exchange_rates_carried_forward') }}
),

mart as (
    select * from {{ ref('fct_daily_marketing_spend') }}
),

staging_by_day as (
    select
        spends.spend_date,
        sum(spends.spend_amount * exchange_rates.eur_exchange_rate) as spend_eur
    from spends
    left join exchange_rates
        on
            spends.currency = exchange_rates.currency
            and spends.spend_date >= exchange_rates.valid_from_date
            and (spends.spend_date < exchange_rates.valid_to_date or exchange_rates.valid_to_date is null)
    group by spends.spend_date
),

mart_by_day as (
    select
        spend_date,
        sum(spend_eur) as spend_eur,
        count(*) as rounded_rows
    from mart
    group by spend_date
),

compared as (
    select
        staging_by_day.spend_date,
        staging_by_day.spend_eur as staging_spend_eur,
        mart_by_day.spend_eur as mart_spend_eur,
        mart_by_day.rounded_rows
    from staging_by_day
    left join mart_by_day on staging_by_day.spend_date = mart_by_day.spend_date
)

select *
from compared
where
    mart_spend_eur is null
    or abs(mart_spend_eur - staging_spend_eur) > 0.005 * rounded_rows + 0.001
