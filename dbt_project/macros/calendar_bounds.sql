{#- The first and last day of the shop's order calendar: the first and last day with a
    non-cancelled order line (two columns of fct_order_lines, whole). Marts whose rows run from
    the first to the last order day read their bounds here, so they agree on the calendar. -#}
{% macro order_day_bounds() -%}
    select
        min(lines.ordered_date) as first_date,
        max(lines.ordered_date) as last_date
    from {{ ref('fct_order_lines') }} as lines
    where not lines.is_cancelled
{%- endmacro %}


{#- Post-hook of an incremental mart whose rows span a calendar: delete the rows whose date left it
    (the first or last day's orders were all cancelled since). A delete+insert run replaces only the
    dates it recomputed, and no recomputed row has a date outside the calendar, so without this such
    rows would stay. `bounds_sql` selects first_date and last_date; with grain='month' the first
    bound is truncated to its month (rows keyed by month). Nothing on a full build. -#}
{% macro delete_rows_outside_calendar(date_column, bounds_sql, grain='day') -%}
    {%- if is_incremental() -%}
        {%- set first_bound = 'bounds.first_date' if grain == 'day'
            else 'cast(' ~ dbt.date_trunc(grain, 'bounds.first_date') ~ ' as date)' -%}
        {%- set condition -%}
        not exists (
            select 1
            from ({{ bounds_sql }}) as bounds
            where {{ date_column }} between {{ first_bound }} and bounds.last_date
        )
        {%- endset -%}
        {{ delete_rows_where(this, condition) }}
    {%- endif -%}
{%- endmacro %}


{#- The first and last day of fct_daily_revenue's calendar: the first and last day with a
    non-cancelled order line or a return (two columns of each input, whole). -#}
{% macro revenue_calendar_bounds() -%}
    select
        min(activity.first_date) as first_date,
        max(activity.last_date) as last_date
    from (
        {{ order_day_bounds() }}
        union all
        select
            min(refunds.returned_date) as first_date,
            max(refunds.returned_date) as last_date
        from {{ ref('int_returns_converted') }} as refunds
    ) as activity
{%- endmacro %}
