-- One row per web event (insert-only; a re-sent event counts once). The visitor's cookie id is
-- pseudonymised (keyed hash).
with

source as (
    select * from {{ source('shop', 'web_events') }}
),

ranked as (
    -- events are insert-only, but a re-sent event must not count twice
    select
        *,
        row_number() over (partition by event_id order by _ds desc) as version_rank
    from source
),

deduplicated as (
    select * from ranked
    where version_rank = 1
),

renamed as (
    select
        event_id,
        session_id,
        {{ pseudonymise('visitor_id') }} as visitor_hash,
        customer_id,
        event_type,
        experiment_key,
        experiment_variant,
        order_id,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        _loaded_at as loaded_at
    from deduplicated
)

select * from renamed
