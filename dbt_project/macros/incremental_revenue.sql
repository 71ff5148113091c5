{#
    The revenue dates an incremental run of fct_daily_revenue_by_segment recomputes, and the rows it
    deletes because they no longer have anything behind them. Use inside `{% if is_incremental() %}`
    (the pre-hook checks it itself).

    A revenue date (segment row) is made of the non-cancelled order lines placed that day and the
    returns booked that day, revalued at the reference rate in force that day. Its rows can change
    only when one of these changes, so the dates to recompute are:
      - the `ordered_date` of every order line loaded after the mart's watermark (a new order, a
        status change such as a cancellation: an order's day, country, channel, currency and rate
        never change, only its status);
      - the `returned_date` of every return loaded after it, and of every return of an order loaded
        after it (int_returns_converted joins each return to its order: a return that arrived before
        its order shows up, with its older `loaded_at`, only once the order is loaded);
      - every date from the earliest `rate_date` of a reference rate loaded after it: a published
        (or corrected, or late) rate of day d is in force from d until the currency's next rate, so
        it can change the reference-rate columns of d and of any later date (a handful of dates a
        day, since the API publishes the day's rate; a late correction recomputes from its day on).
    Over-including is safe (a recomputed date gets the same rows); missing a date is not. The
    mart's `loaded_at` counts the rate a row uses, so the watermark also moves past rates loaded
    after the day's orders (else every run would recompute from the last rate's day again).

    Cost: the order lines of the recomputed dates (a date range DuckDB prunes by zone map, then the
    exact dates), and int_returns_converted, a view over stg_shop__returns (an incremental table).
#}

{#- The dates above, one row each: `revenue_date`, and `with_later_dates`, true for a reference
    rate's day (the dates after it are recomputed too). Each input is read directly: a CTE read twice
    would be copied whole by DuckDB. -#}
{% macro revenue_dates_loaded_after_this_run() -%}
    select
        changed_lines.ordered_date as revenue_date,
        false as with_later_dates
    from {{ ref('fct_order_lines') }} as changed_lines
    where {{ loaded_after_this_run('changed_lines.loaded_at') }}
    union
    select
        changed_returns.returned_date as revenue_date,
        false as with_later_dates
    from {{ ref('int_returns_converted') }} as changed_returns
    where
        {{ loaded_after_this_run('changed_returns.loaded_at') }}
        or changed_returns.order_id in (
            select changed_orders.order_id from {{ ref('fct_order_lines') }} as changed_orders
            where {{ loaded_after_this_run('changed_orders.loaded_at') }}
        )
    union
    select
        changed_rates.rate_date as revenue_date,
        true as with_later_dates
    from {{ ref('stg_marketing_api__exchange_rates') }} as changed_rates
    where {{ loaded_after_this_run('changed_rates.loaded_at') }}
{%- endmacro %}

{#- True for a `date_column` the run recomputes: one of `changed_dates` (the relation above), or on
    or after the earliest of its rate days. The first condition, a plain range, lets DuckDB skip the
    row groups of earlier dates (zone maps): the rest alone, an `or` of two subqueries, reads every
    row of the input. -#}
{% macro is_revenue_date_to_recompute(date_column, changed_dates) -%}
    (
        {{ date_column }} >= (select min({{ changed_dates }}.revenue_date) from {{ changed_dates }})
        and (
            {{ date_column }} in (
                select {{ changed_dates }}.revenue_date from {{ changed_dates }}
                where not {{ changed_dates }}.with_later_dates
            )
            or {{ date_column }} >= (
                select min({{ changed_dates }}.revenue_date) from {{ changed_dates }}
                where {{ changed_dates }}.with_later_dates
            )
        )
    )
{%- endmacro %}

{#-
    Pre-hook of fct_daily_revenue_by_segment: delete the rows of the recomputed dates that have no
    non-cancelled order line and no return any more (a day whose every order was cancelled).
    Nothing on a first build or a full refresh (the hook renders empty; dbt skips it).

    delete+insert on revenue_date replaces the dates the new rows have; a date that comes out empty
    has no new row, so without this its old rows would stay, counting revenue of cancelled orders.
    It runs before the model (its watermark is still the previous run's, so it sees the same dates
    the model recomputes); only such emptied dates go, so the watermark the model then reads stays
    what it was, except when an emptied date held the newest `loaded_at`, which only makes the model
    recompute a few more dates (harmless: over-including). A date can only be emptied by its order
    lines (a return never goes away), so the dates revalued by a late rate need no check here.
-#}
{% macro delete_revenue_dates_left_empty() -%}
    {%- if is_incremental() -%}
        {%- set with_sql -%}
        with

        changed_dates as (
            {{ revenue_dates_loaded_after_this_run() }}
        ),

        dates_with_revenue as (
            select lines.ordered_date as revenue_date
            from {{ ref('fct_order_lines') }} as lines
            where not lines.is_cancelled and lines.ordered_date in (select changed_dates.revenue_date from changed_dates)
            union
            select refunds.returned_date as revenue_date
            from {{ ref('int_returns_converted') }} as refunds
            where refunds.returned_date in (select changed_dates.revenue_date from changed_dates)
        )
        {%- endset -%}
        {%- set condition -%}
        revenue_date in (
            select changed_dates.revenue_date from changed_dates
            except
            select dates_with_revenue.revenue_date from dates_with_revenue
        )
        {%- endset -%}
        {{ delete_rows_where(this, condition, with_sql) }}
    {%- endif -%}
{%- endmacro %}

