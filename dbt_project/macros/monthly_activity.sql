{#-
    The CTEs the monthly customer marts (fct_monthly_customer_activity, fct_cohort_retention) share;
    each mart's header says why a month is recomputed and what it keeps.

    `monthly_recompute_ctes()`: on an incremental run, `recompute_month` (one row, `from_month`):
    the month to recompute from, the earliest of the month of the earliest ordered_date loaded after
    the newest `loaded_at` the table holds, the last month the table holds, and the month of the last
    order day (is_complete_month flips between the old and the new last day). Reads
    `bounds.last_order_date` from the mart's `bounds` CTE. Nothing on a full build.

    `customer_month_ctes()`: `customer_months` (one row per customer and month with a non-cancelled
    order) and `month_loads` (the newest load among a month's order lines, cancelled ones included:
    the month's watermark), from the recompute month on an incremental run. Each must be followed by
    a comma and the mart's next CTE.
-#}
{% macro monthly_recompute_ctes() -%}
    {%- if is_incremental() -%}
        recompute as (
            select
                least(
                    {{ earliest_date_loaded_after_this_run(ref('fct_order_lines'), 'ordered_date') }},
                    (select max(this_run.activity_month) from {{ this }} as this_run),
                    bounds.last_order_date
                ) as from_date
            from bounds
        ),

        recompute_month as (
            select cast({{ dbt.date_trunc('month', 'from_date') }} as date) as from_month
            from recompute
        ),
    {%- endif -%}
{%- endmacro %}


{% macro customer_month_ctes() -%}
    customer_months as (
        select distinct
            customer_id,
            cast({{ dbt.date_trunc('month', 'ordered_date') }} as date) as activity_month
        from {{ ref('fct_order_lines') }}
        where
            not is_cancelled
        {% if is_incremental() -%}
            and ordered_date >= (select recompute_month.from_month from recompute_month)
        {%- endif %}
    ),

    month_loads as (
        select
            cast({{ dbt.date_trunc('month', 'ordered_date') }} as date) as activity_month,
            max(loaded_at) as loaded_at
        from {{ ref('fct_order_lines') }}
        {% if is_incremental() -%}
            where ordered_date >= (select recompute_month.from_month from recompute_month)
        {%- endif %}
        group by cast({{ dbt.date_trunc('month', 'ordered_date') }} as date)
    )
{%- endmacro %}
