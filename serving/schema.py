"""What the serving file holds, declared in one place: the tables publish copies and their DDL.

`serving.duckdb` is what Superset reads (`serving.publish` writes it). Its producers declare
nothing of their own about it; they import their published tables from here:

- `marts`: the dbt marts marked `publish: true` (aggregates, no customer keys; chosen by the dbt
  manifest at publish time);
- `ops`: the data-health tables (`quality.health.OPS_TABLES`, DDL in `quality.health`) and the
  access log (`ACCESS_LOG_DDL`, written by `governance.access_log`) for the Governance dashboard;
- `ml`: the churn model's aggregates, versions and drift (`ML_TABLES`, written by `ml`; never its
  per-customer rows). Publish creates them empty too, so the dashboards' datasets exist before
  the first model is trained.
"""

from __future__ import annotations

from quality.health import OPS_TABLES

PUBLISHED_SCHEMAS = ("marts", "ops", "ml")
# ops holds other tables too (run ledger, stale-asset report, audit anchors); only these are published.
PUBLISHED_OPS_TABLES = (*OPS_TABLES, "access_log")
ML_TABLES = ("churn_risk_segments", "churn_risk_distribution", "model_versions", "model_drift")

ACCESS_LOG_DDL = """
create schema if not exists ops;
create table if not exists ops.access_log (
    event_id varchar,        -- <source>:<id in the source>, unique
    source varchar,          -- superset | airflow | governance
    occurred_at timestamp,   -- UTC
    actor varchar,           -- login name
    action varchar,          -- the source's name for what was done
    object_type varchar,     -- dashboard | chart | dataset | sql_lab | dag | data_subject_request | ...
    object_name varchar,     -- dashboard title, chart name, DAG id, request id
    tables_read varchar,     -- schema.table, comma separated, when known (stale-asset report)
    detail varchar,          -- SQL with literals redacted, task/run ids, request counts
    outcome varchar,         -- success, failed, completed, ... when known
    collected_at timestamp
);
"""

ML_DDL = """
create schema if not exists ml;
create table if not exists ml.churn_risk_segments (
    as_of_date date not null,
    country_code varchar not null,
    main_channel varchar not null,
    customers bigint not null,
    high_risk_customers bigint not null,
    expected_churners double not null,  -- sum of churn probabilities
    average_churn_probability double not null,
    model_version varchar not null,
    is_latest boolean not null default false  -- the newest scored snapshot (what the dashboard shows)
);
create table if not exists ml.churn_risk_distribution (
    as_of_date date not null,
    probability_band varchar not null,  -- '0.0-0.1' .. '0.9-1.0'
    band_floor double not null,
    customers bigint not null,
    model_version varchar not null,
    is_latest boolean not null default false
);
create table if not exists ml.model_versions (
    model_version varchar not null,
    trained_on_as_of date not null,     -- the newest snapshot the version saw (its holdout)
    train_first_as_of date,
    train_last_as_of date,
    training_rows bigint,
    holdout_rows bigint,
    holdout_auc double,
    holdout_brier double,
    holdout_base_rate double,
    training_data_sha256 varchar,
    seed integer,
    is_promoted boolean not null,
    is_current boolean not null,
    decision_reason varchar
);
create table if not exists ml.model_drift (
    run_id varchar,
    checked_at timestamp not null,
    as_of_date date not null,           -- the scored snapshot compared with the reference
    model_version varchar not null,
    reference_as_of date,
    feature varchar not null,
    feature_kind varchar not null,      -- numeric | categorical | prediction
    role varchar not null,              -- trigger (can start retraining) | report
    psi double not null,
    ks_statistic double,
    ks_pvalue double,
    threshold double not null,
    is_drifted boolean not null,
    reference_rows bigint,
    current_rows bigint
);
"""
