-- Grain: one row per UTC day x experiment x variant. The funnel counts sessions that reached each
-- step: session -> add to cart -> checkout -> purchase; step rates are conditional on the step before.
with

sessions as (
    select * from {{ ref('fct_sessions') }}
),

daily as (
    select
        session_date,
        experiment_key,
        experiment_variant,
        count(*) as sessions,
        sum(case when has_added_to_cart then 1 else 0 end) as add_to_cart_sessions,
        sum(case when has_checked_out then 1 else 0 end) as checkout_sessions,
        sum(case when has_purchased then 1 else 0 end) as purchase_sessions
    from sessions
    group by session_date, experiment_key, experiment_variant
),

final as (
    select
        session_date,
        experiment_key,
        experiment_variant,
        sessions,
        add_to_cart_sessions,
        checkout_sessions,
        purchase_sessions,
        cast(add_to_cart_sessions as {{ type_double() }}) / nullif(sessions, 0) as add_to_cart_rate,
        cast(checkout_sessions as {{ type_double() }}) / nullif(add_to_cart_sessions, 0) as checkout_rate,
        cast(purchase_sessions as {{ type_double() }}) / nullif(checkout_sessions, 0) as purchase_rate,
        cast(purchase_sessions as {{ type_double() }}) / nullif(sessions, 0) as session_conversion_rate
    from daily
)

select * from final
