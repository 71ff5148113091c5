-- One row per customer: the latest version. E-mail is pseudonymised (keyed hash); name, phone and
-- street address are dropped; the birth date is generalised to its year.
with

source as (
    select * from {{ source('shop', 'customers') }}
),

latest as (
    select *
    from source
    qualify row_number() over (partition by customer_id order by updated_at desc, _ds desc) = 1
),

renamed as (
    select
        customer_id,
        {{ pseudonymise('email') }} as email_hash,
        country_code,
        city,
        cast(date_trunc('year', birth_date) as date) as birth_year_date,
        marketing_opt_in as is_marketing_opted_in,
        created_at as signed_up_at,
        updated_at,
        _loaded_at as loaded_at
    from latest
)

select * from renamed
