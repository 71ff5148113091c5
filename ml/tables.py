"""The churn model's tables in the warehouse's `ml` schema, and which of them serving gets.

| table | one row per | published |
| --- | --- | --- |
| `ml.fct_customer_churn_features` | customer x as-of date (dbt, point in time) | no (row level) |
| `ml.churn_predictions` | customer x scored as-of date: churn probability, risk band, model version | no (row level) |
| `ml.churn_risk_segments` | as-of date x country x main channel: customers, mean risk, high-risk customers | yes |
| `ml.churn_risk_distribution` | scored as-of date x probability band (10 points wide) | yes |
| `ml.model_versions` | trained model version: holdout AUC/Brier, training range, promoted, current | yes |
| `ml.model_drift` | drift check x feature (and the prediction): PSI, KS, threshold, drifted | yes |

Published tables hold no customer key: country and channel are the finest grain (`serving.publish`
copies exactly `PUBLISHED_TABLES`). Writers replace their day's rows (delete + insert in one
transaction), so a retried task never counts twice.
"""

from __future__ import annotations

SCHEMA = "ml"
PUBLISHED_TABLES = ("churn_risk_segments", "churn_risk_distribution", "model_versions", "model_drift")
HIGH_RISK = 0.7  # churn probability from which a customer counts as high risk

ROW_LEVEL_DDL = """
create schema if not exists ml;
create table if not exists ml.churn_predictions (
    as_of_date date not null,
    customer_id bigint not null,
    country_code varchar,
    main_channel varchar,
    churn_probability double not null,
    risk_band varchar not null,         -- low (< 0.4) | medium | high (>= 0.7)
    model_version varchar not null,
    run_id varchar,
    scored_at timestamp not null
);
"""

# The published tables: publish creates them empty in serving too, so the dashboards' datasets
# exist before the first model is trained.
PUBLISHED_DDL = """
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

DDL = ROW_LEVEL_DDL + PUBLISHED_DDL
