-- Fails on a day where the active customers per country x channel (fct_daily_active_customers_by_segment)
-- contradict the whole shop's (fct_daily_customer_activity): every segment's customers are shop
-- customers, so no segment may exceed the shop, and every shop customer is in at least one segment,
-- so the segments must sum to at least the shop (more when customers order in several segments).
-- The same bounds hold for the customers ordering on the day. A failure means a filtered dashboard
-- tile would show customers the shop does not have, or lose some.
with

segments as (
    select * from {{ ref('fct_daily_active_customers_by_segment') }}
),

whole_shop as (
    select * from {{ ref('fct_daily_customer_activity') }}
),

summed_segments as (
    select
        activity_date,
        sum(active_customers_30d) as summed_active_customers_30d,
        max(active_customers_30d) as largest_segment_active_customers_30d,
        sum(ordering_customers) as summed_ordering_customers,
        max(ordering_customers) as largest_segment_ordering_customers
    from segments
    group by activity_date
),

compared as (
    select
        coalesce(whole_shop.activity_date, summed_segments.activity_date) as activity_date,
        whole_shop.active_customers_30d,
        summed_segments.summed_active_customers_30d,
        summed_segments.largest_segment_active_customers_30d,
        whole_shop.activity_date is not null
        and summed_segments.activity_date is not null
        and summed_segments.largest_segment_active_customers_30d <= whole_shop.active_customers_30d
        and whole_shop.active_customers_30d <= summed_segments.summed_active_customers_30d
        and summed_segments.largest_segment_ordering_customers <= whole_shop.ordering_customers
        and whole_shop.ordering_customers <= summed_segments.summed_ordering_customers as is_consistent
    from whole_shop
    full outer join summed_segments on whole_shop.activity_date = summed_segments.activity_date
)

select * from compared
where not is_consistent
