-- Grain: one row per acquisition cohort (month of the first non-cancelled order) x months since
-- that first order, from 0 up to the last month with data. Retention rate = cohort customers with
-- at least one non-cancelled order in that month / cohort size; month 0 is 1 by definition.
with

customers as (
    select * from {{ ref('dim_customers') }}
),

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

cohort_members as (
    select
        customer_id,
        cohort_month
    from customers
    where has_ordered
),

customer_months as (
    select distinct
        customer_id,
        cast({{ dbt.date_trunc('month', 'ordered_date') }} as date) as activity_month
    from order_lines
    where not is_cancelled
),

bounds as (
    select
        cast({{ dbt.date_trunc('month', 'max(ordered_date)') }} as date) as last_month,
        max(ordered_date) as last_order_date
    from order_lines
    where not is_cancelled
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers
    from cohort_members
    group by cohort_month
),

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
        <= bounds.last_order_date as is_complete_month
    from cohort_months
    cross join bounds
    left join cohort_activity
        on
            cohort_months.cohort_month = cohort_activity.cohort_month
            and cohort_months.activity_month = cohort_activity.activity_month
)

select * from final
