-- One row per day and campaign (the API contract's key): the latest extract of its spend figures.
with

source as (
    select *
    from {{ source_if_loaded('marketing_api', 'marketing_spend', {
        'spend_date': 'date', 'channel': 'varchar', 'campaign_id': 'varchar', 'currency': 'varchar',
        'spend': type_double(), 'impressions': 'bigint', 'clicks': 'bigint',
        '_ds': 'date', '_run_id': 'varchar', '_loaded_at': 'timestamp'
    }) }}
),

ranked as (
    -- a later extract restates a day's figures (late conversions, corrections): keep the newest
    select
        *,
        row_number() over (partition by spend_date, campaign_id order by _ds desc, _loaded_at desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        spend_date,
        channel as marketing_channel,
        campaign_id,
        currency,
        cast(spend as {{ type_double() }}) as spend_amount,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
