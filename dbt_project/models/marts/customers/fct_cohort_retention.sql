-- Grain: one row per acquisition cohort (month of the first non-cancelled order) x months since
-- that first order, from 0 up to the last month with data. Retention rate = cohort customers with
-- at least one non-cancelled order in that month / cohort size; month 0 is 1 by definition.
--
-- Incremental: a run recomputes, for every cohort, the activity months from the month of the earliest
-- ordered_date of the fct_order_lines rows loaded after the newest `loaded_at` in the table, and
-- replaces those months whole (unique_key activity_month). An earlier activity month keeps its rows:
-- its orders did not change, and neither did the cohort of anyone in it. A customer changes cohort
-- only when a line in the old or the new cohort month changes (a cancelled first order moves them
-- to a later cohort, a late earlier order to an earlier one), so both cohorts, and every cohort whose
-- size changes, start at or after the first recomputed month and all their rows are recomputed (the
-- sizes come from dim_customers, built before this). A new last month gives every cohort a row in it,
-- also recomputed. is_complete_month flips for the months ending between the old and the new last
-- order day, so the run also recomputes from the last month the table holds and from the month of
-- the last order day, if earlier. The last order day comes from a scan of two columns of
-- fct_order_lines. An order's day never changes; rows deleted from the source are not seen (rebuild
-- with --full-refresh).
-- The post-hook deletes the months that left the range (its first or last month's orders were all
-- cancelled since). Every month in the range has a row of the first cohort, so inside it every
-- recomputed month is replaced.
{{
    config(
        materialized='incremental',
        unique_key='activity_month',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ delete_rows_outside_calendar('activity_month', order_day_bounds(), grain='month') }}"]
    )
}}

with

cohort_members as (
    select
        customer_id,
        cohort_month
    from {{ ref('dim_customers') }}
    where has_ordered
),

bounds as (
    select
        cast({{ dbt.date_trunc('month', 'max(ordered_date)') }} as date) as last_month,
        max(ordered_date) as last_order_date
    from {{ ref('fct_order_lines') }}
    where not is_cancelled
),

-- the first month to recompute (see above)
{{ monthly_recompute_ctes() }}

{{ customer_month_ctes() }},

-- read from dim_customers itself, not cohort_members: a CTE read twice is copied whole by DuckDB
cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers
    from {{ ref('dim_customers') }}
    where has_ordered
    group by cohort_month
),

-- every cohort x month up to the last month (a few rows per cohort: months, not customers)
cohort_months as (
    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_customers,
        month_offsets.months_since_first_order,
        cast({{ dbt.dateadd('month', 'month_offsets.months_since_first_order', 'cohort_sizes.cohort_month') }} as date)
            as activity_month
    from cohort_sizes
    cross join bounds
    cross join {{ integer_series(0, dbt.datediff('cohort_sizes.cohort_month', 'bounds.last_month', 'month')) }}
        as month_offsets (months_since_first_order)
),

cohort_activity as (
    select
        cohort_members.cohort_month,
        customer_months.activity_month,
        count(*) as active_customers
    from customer_months
    inner join cohort_members on customer_months.customer_id = cohort_members.customer_id
    group by cohort_members.cohort_month, customer_months.activity_month
),

final as (
    select
        cohort_months.cohort_month,
        cohort_months.months_since_first_order,
        cohort_months.activity_month,
        cohort_months.cohort_customers,
        coalesce(cohort_activity.active_customers, 0) as active_customers,
        cast(coalesce(cohort_activity.active_customers, 0) as {{ type_double() }})
        / cohort_months.cohort_customers as retention_rate,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'cohort_months.activity_month')) }} as date)
        <= bounds.last_order_date as is_complete_month,
        month_loads.loaded_at
    from cohort_months
    cross join bounds
    left join cohort_activity
        on
            cohort_months.cohort_month = cohort_activity.cohort_month
            and cohort_months.activity_month = cohort_activity.activity_month
    left join month_loads on cohort_months.activity_month = month_loads.activity_month
    {% if is_incremental() -%}
        where cohort_months.activity_month >= (select recompute_month.from_month from recompute_month)
    {%- endif %}
)

select * from final
