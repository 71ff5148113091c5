-- One row per customer: the latest version. E-mail is pseudonymised (keyed hash); name, phone and
-- street address are dropped; the birth date is generalised to its year.
with

source as (
    select * from {{ source('shop', 'customers') }}
),

ranked as (
    select
        *,
        row_number() over (partition by customer_id order by updated_at desc, _ds desc) as version_rank
    from source
),

latest as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        customer_id,
        {{ pseudonymise('email') }} as email_hash,
        country_code,
        city,
        cast({{ dbt.date_trunc('year', 'birth_date') }} as date) as birth_year_date,
        marketing_opt_in as is_marketing_opted_in,
        created_at as signed_up_at,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
