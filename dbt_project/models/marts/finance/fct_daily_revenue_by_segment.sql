-- Grain: one row per UTC day x country x sales channel x currency that had an order or a return.
-- The EUR figures use each order's checkout rate (what the customer paid: the shop's truth); the
-- reference-rate columns revalue the same local-currency net revenue at the external API's rate of
-- the day, as a cross-check of the FX effect.
--
-- Incremental: a run recomputes, from all their order lines and returns, the revenue dates with an
-- order line (by ordered_date) or a return (by returned_date) loaded after the newest `loaded_at`
-- the table holds, and every date from the earliest reference rate loaded since (a rate is in force
-- until the next one), and replaces those dates whole (delete+insert on revenue_date alone, so a
-- segment gone from a recomputed date goes too; macros/incremental_revenue.sql). A date left with
-- no non-cancelled order and no return produces no row to replace it: the pre-hook deletes it.
-- This relies on an order's day, country, channel and currency, and a return's day, never changing
-- (later versions change an order's status); source rows deleted by a reload are not seen either:
-- rebuild with --full-refresh after such a correction, as upstream. `loaded_at` is the newest load
-- time of the lines (cancelled ones too), returns and reference rate behind a row: the watermark,
-- and deterministic from the inputs, so a full refresh gives the same rows (tests/dbt).
{{
    config(
        materialized='incremental',
        unique_key='revenue_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_revenue_dates_left_empty() }}"
    )
}}

with

{% if is_incremental() -%}
    -- a few dates: small enough for DuckDB to copy, as it does a CTE read twice
    changed_dates as (
        {{ revenue_dates_loaded_after_this_run() }}
    ),
{%- endif %}

order_lines as (
    select * from {{ ref('fct_order_lines') }}
    {% if is_incremental() -%}
        where {{ is_revenue_date_to_recompute('ordered_date', 'changed_dates') }}
    {%- endif %}
),

refunds as (
    select * from {{ ref('int_returns_converted') }}
    {% if is_incremental() -%}
        where {{ is_revenue_date_to_recompute('returned_date', 'changed_dates') }}
    {%- endif %}
),

exchange_rates as (
    select * from {{ ref('int_exchange_rates_carried_forward') }}
),

-- when each published rate was loaded: a row's loaded_at counts the rate it uses, so the watermark
-- moves past rates loaded after the day's orders (otherwise every run would recompute their dates)
rate_loads as (
    select * from {{ ref('stg_marketing_api__exchange_rates') }}
),

sales as (
    select
        ordered_date as revenue_date,
        country_code,
        channel,
        currency,
        sum(case when not is_cancelled then line_amount end) as gross_revenue_local,
        sum(case when not is_cancelled then line_amount_eur end) as gross_revenue_eur,
        count(distinct case when not is_cancelled then order_id end) as orders,
        -- cancelled lines too: the newest change behind the segment-day (the watermark advances past it)
        max(loaded_at) as loaded_at
    from order_lines
    group by ordered_date, country_code, channel, currency
),

returns_by_segment as (
    select
        returned_date as revenue_date,
        country_code,
        channel,
        currency,
        sum(refund_amount) as returns_local,
        sum(refund_amount_eur) as returns_eur,
        max(loaded_at) as loaded_at
    from refunds
    group by returned_date, country_code, channel, currency
),

segments as (
    select
        coalesce(sales.revenue_date, returns_by_segment.revenue_date) as revenue_date,
        coalesce(sales.country_code, returns_by_segment.country_code) as country_code,
        coalesce(sales.channel, returns_by_segment.channel) as channel,
        coalesce(sales.currency, returns_by_segment.currency) as currency,
        coalesce(sales.gross_revenue_local, 0) - coalesce(returns_by_segment.returns_local, 0) as net_revenue_local,
        cast({{ round_to('coalesce(sales.gross_revenue_eur, 0)', 2) }} as decimal(18, 2)) as gross_revenue_eur,
        cast({{ round_to('coalesce(returns_by_segment.returns_eur, 0)', 2) }} as decimal(18, 2)) as returns_eur,
        coalesce(sales.orders, 0) as orders,
        greatest(sales.loaded_at, returns_by_segment.loaded_at) as loaded_at
    from sales
    full outer join returns_by_segment
        on
            sales.revenue_date = returns_by_segment.revenue_date
            and sales.country_code = returns_by_segment.country_code
            and sales.channel = returns_by_segment.channel
            and sales.currency = returns_by_segment.currency
    -- a segment-day of cancelled orders only, without a return, has no revenue row
    where sales.orders > 0 or returns_by_segment.revenue_date is not null
),

revalued as (
    select
        segments.revenue_date,
        segments.country_code,
        segments.channel,
        segments.currency,
        segments.net_revenue_local,
        segments.gross_revenue_eur,
        segments.returns_eur,
        segments.orders,
        exchange_rates.eur_exchange_rate as reference_eur_exchange_rate,
        greatest(segments.loaded_at, rate_loads.loaded_at) as loaded_at
    from segments
    left join exchange_rates
        on
            segments.currency = exchange_rates.currency
            and segments.revenue_date >= exchange_rates.valid_from_date
            and (segments.revenue_date < exchange_rates.valid_to_date or exchange_rates.valid_to_date is null)
    left join rate_loads
        on
            exchange_rates.currency = rate_loads.currency
            and exchange_rates.valid_from_date = rate_loads.rate_date
),

final as (
    select
        revenue_date,
        country_code,
        channel,
        currency,
        gross_revenue_eur,
        returns_eur,
        -- typed, so PostgreSQL keeps two decimals (numeric - numeric has no fixed scale there)
        cast(gross_revenue_eur - returns_eur as decimal(18, 2)) as net_revenue_eur,
        orders,
        cast(
            case when orders > 0 then round(gross_revenue_eur / orders, 2) end as decimal(18, 2)
        ) as average_order_value_eur,
        cast({{ round_to('net_revenue_local', 2) }} as decimal(18, 2)) as net_revenue_local,
        reference_eur_exchange_rate,
        cast(
            {{ round_to('net_revenue_local * reference_eur_exchange_rate', 2) }} as decimal(18, 2)
        ) as net_revenue_eur_at_reference_rate,
        loaded_at
    from revalued
)

select * from final
