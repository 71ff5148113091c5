-- Grain: one row per calendar month from the first to the last month with an order.
-- Active: at least one non-cancelled order in the month. New: first non-cancelled order in the month.
-- Returning: active in the month, first order in an earlier month.
--
-- Incremental: a run recomputes every month from the month of the earliest ordered_date of the
-- fct_order_lines rows loaded after the newest `loaded_at` in the table, and replaces those months
-- whole (unique_key activity_month). An earlier month keeps its row: its orders did not change, nor
-- did the cohort of its customers (a customer's first order month only moves when a line in its old
-- or new month changes; dim_customers, built before this, holds the new one). is_complete_month
-- depends on the last order day: it flips for the months ending between the old and the new last
-- order day, so the run also recomputes from the last month the table holds and from the month of
-- the last order day, if earlier. The last order day comes from a scan of two columns of
-- fct_order_lines. An order's day never changes; rows deleted from the source are not seen (rebuild
-- with --full-refresh).
{{
    config(
        materialized='incremental',
        unique_key='activity_month',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental() %}
            {#- Months left without a non-cancelled order (all of their orders were cancelled since): no
                recomputed row has their month, so the replace above does not reach them. -#}
            {{ delete_rows_where(this, 'activity_month not in (
                select distinct cast(' ~ dbt.date_trunc('month', 'lines.ordered_date') ~ ' as date)
                from ' ~ ref('fct_order_lines') ~ ' as lines
                where not lines.is_cancelled and lines.ordered_date is not null
            )') }}
            {% endif %}"
        ]
    )
}}

with

customers as (
    select * from {{ ref('dim_customers') }}
),

bounds as (
    select max(ordered_date) as last_order_date
    from {{ ref('fct_order_lines') }}
    where not is_cancelled
),

-- the first month to recompute (see above)
{{ monthly_recompute_ctes() }}

{{ customer_month_ctes() }},

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
        <= bounds.last_order_date as is_complete_month,
        month_loads.loaded_at
    from monthly
    cross join bounds
    left join month_loads on monthly.activity_month = month_loads.activity_month
)

select * from final
