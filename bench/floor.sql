-- The floor: the three core KPIs straight from the lake's raw Parquet, in one DuckDB process, one
-- script. Same definitions as the marts (bench/README.md): staging keeps the latest version of a
-- row (updated_at, then the extract day), money is cents / 100 x the EUR rate fixed at checkout.
-- `{raw}` is replaced by the lake's raw/shop folder.

-- latest version of every row, as staging does
create temp view orders as
select * exclude (ds), ds as _ds
from read_parquet('{raw}/orders/ds=*/*.parquet', hive_partitioning = true)
qualify row_number() over (partition by order_id order by updated_at desc, ds desc) = 1;

create temp view order_items as
select * exclude (ds), ds as _ds
from read_parquet('{raw}/order_items/ds=*/*.parquet', hive_partitioning = true)
qualify row_number() over (partition by order_item_id order by updated_at desc, ds desc) = 1;

create temp view returns as
select * exclude (ds), ds as _ds
from read_parquet('{raw}/returns/ds=*/*.parquet', hive_partitioning = true)
qualify row_number() over (partition by return_id order by updated_at desc, ds desc) = 1;

-- web events are insert-only, and the A/B KPI only takes min/max per session of them: a re-sent
-- event changes nothing, so the floor skips the deduplication staging does (a sort of every event)
create temp view web_events as
select session_id, experiment_key, experiment_variant, visitor_id, event_type
from read_parquet('{raw}/web_events/ds=*/*.parquet', hive_partitioning = true);

create temp view customer_keys as
select distinct customer_id
from read_parquet('{raw}/customers/ds=*/*.parquet', hive_partitioning = true);

-- order lines of non-cancelled orders, in EUR (shared by revenue and cohorts)
create temp table sold_lines as
select
    order_items.order_id,
    orders.customer_id,
    cast(orders.ordered_at as date) as ordered_date,
    order_items.quantity * order_items.unit_price_cents / 100.0 * orders.eur_exchange_rate as line_amount_eur
from order_items
inner join orders on order_items.order_id = orders.order_id
where orders.order_status != 'cancelled';

-- 1. daily net revenue excluding returns
create temp table kpi_daily_revenue as
with
sales as (
    select ordered_date as revenue_date, sum(line_amount_eur) as gross, count(distinct order_id) as orders
    from sold_lines
    group by 1
),
refunds as (
    select cast(returns.returned_at as date) as revenue_date, sum(returns.refund_cents / 100.0 * orders.eur_exchange_rate) as refunded
    from returns
    inner join orders on returns.order_id = orders.order_id
    group by 1
),
calendar as (
    select cast(range as date) as revenue_date
    from range(
        (select min(d) from (select revenue_date as d from sales union all select revenue_date from refunds)),
        (select max(d) from (select revenue_date as d from sales union all select revenue_date from refunds)) + interval 1 day,
        interval 1 day
    )
),
daily as (
    select
        calendar.revenue_date,
        cast(round(coalesce(sales.gross, 0), 2) as decimal(18, 2)) as gross_revenue_eur,
        cast(round(coalesce(refunds.refunded, 0), 2) as decimal(18, 2)) as returns_eur,
        coalesce(sales.orders, 0) as orders
    from calendar
    left join sales on calendar.revenue_date = sales.revenue_date
    left join refunds on calendar.revenue_date = refunds.revenue_date
)
select
    revenue_date,
    gross_revenue_eur,
    returns_eur,
    gross_revenue_eur - returns_eur as net_revenue_eur,
    orders,
    cast(case when orders > 0 then round(gross_revenue_eur / orders, 2) end as decimal(18, 2)) as average_order_value_eur
from daily
order by revenue_date;

-- 2. monthly cohort retention (cohort = month of the first non-cancelled order)
create temp table kpi_cohort_retention as
with
customer_months as (
    select distinct customer_id, cast(date_trunc('month', ordered_date) as date) as activity_month
    from sold_lines
    where customer_id in (select customer_id from customer_keys)
),
cohorts as (
    select customer_id, min(activity_month) as cohort_month
    from customer_months
    group by 1
),
bounds as (
    select cast(date_trunc('month', max(ordered_date)) as date) as last_month, max(ordered_date) as last_order_date
    from sold_lines
),
sizes as (
    select cohort_month, count(*) as cohort_customers from cohorts group by 1
),
grid as (
    select
        sizes.cohort_month,
        sizes.cohort_customers,
        months.offset_months as months_since_first_order,
        cast(sizes.cohort_month + to_months(months.offset_months) as date) as activity_month
    from sizes
    cross join bounds
    cross join generate_series(0, date_diff('month', sizes.cohort_month, bounds.last_month)) as months (offset_months)
),
activity as (
    select cohorts.cohort_month, customer_months.activity_month, count(*) as active_customers
    from customer_months
    inner join cohorts on customer_months.customer_id = cohorts.customer_id
    group by 1, 2
)
select
    grid.cohort_month,
    grid.months_since_first_order,
    grid.activity_month,
    grid.cohort_customers,
    coalesce(activity.active_customers, 0) as active_customers,
    cast(coalesce(activity.active_customers, 0) as double) / grid.cohort_customers as retention_rate,
    cast(grid.activity_month + interval 1 month - interval 1 day as date) <= bounds.last_order_date as is_complete_month
from grid
cross join bounds
left join activity
    on grid.cohort_month = activity.cohort_month and grid.activity_month = activity.activity_month
order by 1, 2;

-- 3. A/B conversion per variant (unit: the visitor; converted = any session with a purchase)
create temp table kpi_experiment_results as
with
sessions as (
    select
        session_id,
        min(experiment_key) as experiment_key,
        min(experiment_variant) as experiment_variant,
        min(visitor_id) as visitor_id,
        max(case when event_type = 'purchase' then 1 else 0 end) as has_purchased
    from web_events
    group by 1
),
visitors as (
    select experiment_key, experiment_variant, visitor_id, count(*) as sessions, max(has_purchased) as has_converted
    from sessions
    group by 1, 2, 3
)
select
    experiment_key,
    experiment_variant,
    count(*) as exposed_visitors,
    sum(sessions) as sessions,
    sum(has_converted) as converted_visitors,
    cast(sum(has_converted) as double) / count(*) as conversion_rate
from visitors
group by 1, 2
order by 1, 2;
