-- Grain: one row per spend day x marketing channel. Spend is converted to EUR at the external
-- reference rate in force on the spend day (the API's own rates; orders use their checkout rate).
with

spends as (
    select * from {{ ref('stg_marketing_api__campaign_spends') }}
),

exchange_rates as (
    select * from {{ ref('int_exchange_rates_carried_forward') }}
),

converted as (
    select
        spends.spend_date,
        spends.marketing_channel,
        spends.campaign_id,
        spends.impressions,
        spends.clicks,
        spends.spend_amount * exchange_rates.eur_exchange_rate as spend_eur,
        case
            when exchange_rates.is_fixed_rate then 0
            else {{ dbt.datediff('exchange_rates.valid_from_date', 'spends.spend_date', 'day') }}
        end as rate_age_days
    from spends
    left join exchange_rates
        on
            spends.currency = exchange_rates.currency
            and spends.spend_date >= exchange_rates.valid_from_date
            and (spends.spend_date < exchange_rates.valid_to_date or exchange_rates.valid_to_date is null)
),

daily as (
    select
        spend_date,
        marketing_channel,
        count(distinct campaign_id) as campaigns,
        count(*) as spend_rows,
        count(spend_eur) as converted_spend_rows,
        sum(spend_eur) as spend_eur,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        max(rate_age_days) as max_rate_age_days
    from converted
    group by spend_date, marketing_channel
),

final as (
    select
        spend_date,
        marketing_channel,
        campaigns,
        -- null unless every row had a rate: a partial sum would understate spend (and flatter CAC)
        cast(
            case when converted_spend_rows = spend_rows then {{ round_to('spend_eur', 2) }} end as decimal(18, 2)
        ) as spend_eur,
        impressions,
        clicks,
        cast(clicks as {{ type_double() }}) / nullif(impressions, 0) as click_through_rate,
        cast(
            case when converted_spend_rows = spend_rows then {{ round_to('spend_eur / nullif(clicks, 0)', 4) }} end
            as decimal(18, 4)
        ) as cost_per_click_eur,
        max_rate_age_days
    from daily
)

select * from final
