-- Grain: one row per calendar month from the first to the last month with an order.
-- Active: at least one non-cancelled order in the month. New: first non-cancelled order in the month.
-- Returning: active in the month, first order in an earlier month.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

customer_months as (
    select distinct
        customer_id,
        cast({{ dbt.date_trunc('month', 'ordered_date') }} as date) as activity_month
    from order_lines
    where not is_cancelled
),

bounds as (
    select max(ordered_date) as last_order_date
    from order_lines
    where not is_cancelled
),

monthly as (
    select
        customer_months.activity_month,
        count(*) as active_customers,
        sum(case when customers.cohort_month = customer_months.activity_month then 1 else 0 end) as new_customers
    from customer_months
    inner join customers on customer_months.customer_id = customers.customer_id
    group by customer_months.activity_month
),

final as (
    select
        monthly.activity_month,
        monthly.active_customers,
        monthly.new_customers,
        monthly.active_customers - monthly.new_customers as returning_customers,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'monthly.activity_month')) }} as date)
        <= bounds.last_order_date as is_complete_month
    from monthly
    cross join bounds
)

select * from final
