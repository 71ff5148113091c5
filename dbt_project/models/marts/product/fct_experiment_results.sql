-- Grain: one row per experiment x variant, over the whole experiment so far.
-- Unit of analysis: the visitor (the unit the shop randomises). A visitor converts when any of
-- their sessions ends in a purchase. Each non-control variant is compared with the control:
--   absolute lift = conversion rate - control rate; relative lift = absolute lift / control rate;
--   95% CI of the difference: Wald, unpooled standard error;
--   p-value: two-sided two-proportion z-test, pooled standard error;
--   sample-ratio mismatch: chi-square goodness of fit of exposed visitors against an equal split
--   (one degree of freedom: defined for two variants, which a data test enforces).
--
-- Reads int_experiment_visitors (one row per experiment x variant x visitor, kept incrementally),
-- not every session of the history: a table, rebuilt whole, but per visitor and variant.
with

visitors as (
    select * from {{ ref('int_experiment_visitors') }}
),

variants as (
    select
        experiment_key,
        experiment_variant,
        experiment_variant = 'control' as is_control,
        count(*) as exposed_visitors,
        sum(sessions) as sessions,
        sum(has_converted) as converted_visitors,
        min(first_session_date) as first_exposure_date,
        max(last_session_date) as last_exposure_date
    from visitors
    group by experiment_key, experiment_variant
),

experiments as (
    select
        experiment_key,
        count(*) as variant_count,
        cast(sum(exposed_visitors) as {{ type_double() }}) / count(*) as expected_visitors_per_variant
    from variants
    group by experiment_key
),

sample_ratio as (
    -- chi-square = sum over variants of (observed - expected)^2 / expected, expected = an equal share
    select
        variants.experiment_key,
        sum(
            power(variants.exposed_visitors - experiments.expected_visitors_per_variant, 2)
            / experiments.expected_visitors_per_variant
        ) as srm_chi_square
    from variants
    inner join experiments on variants.experiment_key = experiments.experiment_key
    group by variants.experiment_key
),

controls as (
    select
        experiment_key,
        exposed_visitors as control_visitors,
        converted_visitors as control_converted_visitors
    from variants
    where is_control
),

rates as (
    select
        variants.*,
        experiments.variant_count,
        sample_ratio.srm_chi_square,
        controls.control_visitors,
        controls.control_converted_visitors,
        cast(variants.converted_visitors as {{ type_double() }}) / variants.exposed_visitors as conversion_rate,
        cast(controls.control_converted_visitors as {{ type_double() }}) / controls.control_visitors
            as control_conversion_rate,
        cast(variants.converted_visitors + controls.control_converted_visitors as {{ type_double() }})
        / (variants.exposed_visitors + controls.control_visitors) as pooled_conversion_rate
    from variants
    inner join experiments on variants.experiment_key = experiments.experiment_key
    inner join sample_ratio on variants.experiment_key = sample_ratio.experiment_key
    left join controls on variants.experiment_key = controls.experiment_key
),

differences as (
    select
        *,
        conversion_rate - control_conversion_rate as absolute_lift,
        sqrt(
            conversion_rate * (1 - conversion_rate) / exposed_visitors
            + control_conversion_rate * (1 - control_conversion_rate) / control_visitors
        ) as standard_error_unpooled,
        sqrt(
            pooled_conversion_rate * (1 - pooled_conversion_rate)
            * (1.0 / exposed_visitors + 1.0 / control_visitors)
        ) as standard_error_pooled
    from rates
),

z_scores as (
    select
        *,
        absolute_lift / nullif(standard_error_pooled, 0) as z_score
    from differences
),

final as (
    select
        experiment_key,
        experiment_variant,
        is_control,
        first_exposure_date,
        last_exposure_date,
        exposed_visitors,
        sessions,
        converted_visitors,
        conversion_rate,
        control_conversion_rate,
        case when not is_control then absolute_lift end as absolute_lift,
        case when not is_control then absolute_lift / nullif(control_conversion_rate, 0) end as relative_lift,
        case
            when not is_control then absolute_lift - {{ z_for_confidence(0.95) }} * standard_error_unpooled
        end as lift_ci_lower_95,
        case
            when not is_control then absolute_lift + {{ z_for_confidence(0.95) }} * standard_error_unpooled
        end as lift_ci_upper_95,
        case when not is_control then z_score end as z_score,
        case when not is_control then {{ two_sided_p_value('z_score') }} end as p_value,
        case
            when not is_control then {{ two_sided_p_value('z_score') }} < {{ var('experiment_alpha') }}
        end as is_significant,
        variant_count,
        srm_chi_square,
        case when variant_count = 2 then {{ chi_square_1df_p_value('srm_chi_square') }} end as srm_p_value,
        case
            when variant_count = 2
                then {{ chi_square_1df_p_value('srm_chi_square') }} < {{ var('experiment_srm_alpha') }}
        end as has_sample_ratio_mismatch
    from z_scores
)

select * from final
