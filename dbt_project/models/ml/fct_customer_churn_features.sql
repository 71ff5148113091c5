-- Grain: one row per active customer per as-of date: customers with an order in the
-- `churn_active_days` days before D (a customer gone longer has churned already; keeping them
-- would make every snapshot grow with the whole history). Features for as-of date D use only
-- events with a timestamp before D 00:00 UTC (orders, order lines, returns, web sessions), so a
-- model trained on them never sees the future. As-of dates: every Monday once the shop has `churn_min_history_days`
-- of orders, plus the day after the last order day (the snapshot the live model scores).
-- Label: churned = no order in [D, D + churn_label_days); null until that window has been observed
-- completely (D + churn_label_days <= the day after the last order day).
-- Orders count whatever their later status: a cancellation is an update after D that D cannot know.
--
-- How (it must stay linear at ten million orders): events are summed per customer and day (orders
-- in the incremental int_customer_order_days, sessions from fct_sessions), put on
-- one timeline per customer with the snapshot rows, and every feature is a window over that
-- timeline (days before D, the 30 or 90 days before D, the label's days from D). Joining each
-- snapshot to all of its customer's earlier events instead grows with snapshots x history.
-- Measured and rejected: running totals per event day looked up with four ASOF joins (one per
-- window edge). Right at 1M orders, but each join sorts the wide snapshot rows again: at 10M
-- (~80M snapshot rows, DuckDB limited to 3 GB) it spilled about 40 GB and filled the disk, where
-- these windows take about 400 s. Also measured: each snapshot joined to its customer's event days
-- of the batch and grouped per snapshot (half the CPU of the windows at 1M orders, but its hash
-- table holds every snapshot of a batch at about 1.5 KB each: past DuckDB's limit at 10M). The
-- windows share one sort (see `positioned` in the macro) and the running totals use DuckDB's
-- cheapest frame, which halved the windows' time against one RANGE frame per feature; counts that
-- share a frame are summed by one aggregate (`packed_counts`: a window costs per aggregate),
-- 13 aggregates instead of 23, the batch's windows 5.8 -> 4.0 s at 1M orders.
--
-- Incremental: a snapshot's rows change only when its label completes (D + churn_label_days is
-- observed; its features only read days before D, which are over) or when it stops being the
-- latest. A run deletes those snapshots (the pre-hook: the latest one and those whose label has
-- just completed) and builds every as-of date the table does not hold: at most a few a day,
-- whatever the history. Their cost is bounded by the day too: only events from `recent_from` (90
-- days before the earliest date built: every window of a snapshot starts after it) to
-- `recent_until` (the end of the latest date's label window) go on the timeline, and each
-- customer's totals from before it are carried in by one grouped sum (`carried`) and added to the
-- window's (`combined`).
--
-- Batches: one statement builds at most `churn_dates_per_batch` as-of dates (the earliest missing
-- ones); the post-hook inserts the rest, batch by batch, with the same SQL (on an incremental run,
-- all of them: the model's own statement builds none). Once at most
-- `churn_dates_one_by_one` dates are left (a daily run: the new latest date, and on some days a
-- Monday whose label has just completed), each is built on its own, and then its windows are
-- filters of one grouped aggregate per customer instead of a sort of the timeline (`one_date` in
-- the macro): at 1M orders a year the windows took 5.2 s of a daily statement's 8.6 s of CPU. Both
-- ways give the same rows (tests/ml/test_features.py builds every date each way). A first build or
-- a full refresh sorts a few weeks of snapshots at a time, carrying each batch's earlier totals in
-- like a daily run, so it gives the same rows as daily runs (tested there too) within DuckDB's
-- memory limit: at ten million orders a year all snapshots at once spilled past the 10 GB cap on
-- DuckDB's temporary files.
--
-- A date built on its own with more than `churn_customers_per_statement` active customers is built
-- in several statements, each for the customers whose key hashes to its share, so that one date's
-- aggregates can be kept within DuckDB's memory limit. Each share re-reads the customers' history:
-- at ten million orders a year (2.75 million active customers a date) two shares were no faster
-- than one, so the default splits only larger dates. The shares add up to the same rows (tested).
--
-- The SQL is in macros/churn_features.sql (`churn_features`), because the post-hook runs it again.
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        post_hook="{{ build_remaining_churn_snapshots(var('churn_dates_per_batch')) }}",
        pre_hook="{% if is_incremental() %}
            delete from {{ this }}
            where is_latest or (
                not has_complete_label
                and as_of_date + interval {{ var('churn_label_days') }} day
                <= (select max(ordered_date) + interval 1 day from {{ ref('stg_shop__orders') }})
            )
        {% endif %}"
    )
}}

{% if is_incremental() -%}
    {#- no rows here: the post-hook inserts the dates this run builds straight into the table, where
        this statement's rows would be written to a temporary table and then copied (dbt's incremental
        materialization): at ten million orders 1.1 s for the 2.75M rows of a daily snapshot. The
        query is still planned, so its columns are checked against the table (on_schema_change). -#}
    select * from ({{ churn_features(1, only_missing=true) }}) as built_by_the_post_hook
    where false
{%- else -%}
    {{ churn_features(churn_batch_size(churn_dates_left(), var('churn_dates_per_batch')) | int,
        only_missing=false) }}
{%- endif %}
