"""The churn model's tables in the warehouse's `ml` schema, and which of them serving gets.

| table | one row per | published |
| --- | --- | --- |
| `ml.fct_customer_churn_features` | customer x as-of date (dbt, point in time) | no (row level) |
| `ml.churn_predictions` | customer x scored as-of date: churn probability, risk band, model version | no (row level) |
| `ml.churn_risk_segments` | as-of date x country x main channel: customers, mean risk, high-risk customers | yes |
| `ml.churn_risk_distribution` | scored as-of date x probability band (10 points wide) | yes |
| `ml.model_versions` | trained model version: holdout AUC/Brier, training range, promoted, current | yes |
| `ml.model_drift` | drift check x feature (and the prediction): PSI, KS, threshold, drifted | yes |

Published tables hold no customer key: country and channel are the finest grain (declared in
`serving.schema`, which `serving.publish` copies exactly). Writers replace their day's rows (delete + insert in one
transaction), so a retried task never counts twice.
"""

from __future__ import annotations

from serving.schema import ML_DDL

SCHEMA = "ml"
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

# the published tables are declared with everything else serving holds (serving/schema.py)
DDL = ROW_LEVEL_DDL + ML_DDL
