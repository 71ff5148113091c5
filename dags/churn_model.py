"""
### churn_model: drift check, retraining when needed, scoring, publishing predictions

**When it runs**: data-aware, after every publication of the marts (`serving_marts`, produced by
`elt_marts.publish`), i.e. once a day once the day's data is built and audited. The feature mart
`ml.fct_customer_churn_features` is built by the same dbt run. With `MARTS_ENGINE=spark` the DAG
has no schedule: the feature mart is one of the DuckDB-only models (tag `duckdb_only`, its windows
are written in DuckDB's SQL), which the Spark build leaves out, so there would be no new snapshot to
score (README, "Spark mode").

**What it does** (logic in `ml/flow.py`; registry in `var/ml/churn/`, `ML_REGISTRY_DIR`):

1. `check_drift` - scores the latest feature snapshot with the current model and compares features
   and predictions with the model's training reference: PSI per feature (KS recorded too). Rows go
   to `ml.model_drift` and to `ops.data_health` (gate `model_drift`, warnings only). Decides to
   retrain when there is no model, a trigger feature's PSI exceeds `CHURN_PSI_THRESHOLD` (0.2,
   also an alert), or the model is older than `CHURN_MAX_MODEL_AGE_DAYS` (28 days of data).
2. `retrain` - when decided: trains a candidate (scikit-learn, seeded, newest labelled snapshot as
   the holdout), saves it in the registry, and **promotes it only if its holdout AUC beats the
   current model's** on the same rows. Every decision is a line in `decisions.jsonl`.
3. `score` - the current model scores the latest snapshot: `ml.churn_predictions` (per customer,
   warehouse only), `ml.churn_risk_segments` and `ml.churn_risk_distribution` (aggregates),
   `ml.model_versions`.
4. `publish` - copies the published `ml` tables (aggregates, versions, drift) and the `ops` tables
   into `serving.duckdb` next to the marts as they are; *Churn predictions* and *Data health*
   dashboards show them.

**Runbook.** A failed task alerts (`var/alerts.jsonl`, `ALERT_WEBHOOK_URL`) with its one-line
reason. `FeaturesMissing`: dbt has not built the feature mart; run `elt_marts`. `NotEnoughData`:
fewer than two labelled weekly snapshots (a young shop): nothing to learn yet. A candidate that is
not promoted is not a failure: read the reason with `python -m stackctl ml status`. To roll back, write the
wanted version into `var/ml/churn/current.json` and clear `score`. Every task is idempotent: clear
freely.
"""

from __future__ import annotations

import datetime as dt

from _common.assets import SERVING_MARTS
from _common.defaults import DEFAULT_ARGS
from _common.engine import marts_on_spark
from airflow.sdk import dag, task

from core.orchestration import CHURN_MODEL, WAREHOUSE_POOL


@dag(
    dag_id=CHURN_MODEL,
    schedule=None if marts_on_spark() else [SERVING_MARTS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # one registry and one current pointer
    default_args={**DEFAULT_ARGS, "owner": "product-science"},
    doc_md=__doc__,
    tags=["quality", "publish"],
)
def churn_model():
    @task(pool=WAREHOUSE_POOL)
    def check_drift(run_id: str | None = None) -> dict:
        from core.settings import get_settings
        from ml.flow import check_drift as run_check

        return run_check(get_settings(), run_id)

    @task(pool=WAREHOUSE_POOL)
    def retrain(decision: dict, run_id: str | None = None) -> dict:
        from core.settings import get_settings
        from ml.flow import retrain as run_retrain

        return run_retrain(get_settings(), run_id, decision)

    @task(pool=WAREHOUSE_POOL)
    def score(run_id: str | None = None) -> dict:
        from core.settings import get_settings
        from ml.flow import score as run_score

        return run_score(get_settings(), run_id)

    @task(pool=WAREHOUSE_POOL)
    def publish(run_id: str | None = None) -> dict[str, int]:
        from core.settings import get_settings
        from pipelines.publishing import refresh_health_for_dashboards

        return refresh_health_for_dashboards(get_settings(), run_id).tables

    retrain(check_drift()) >> score() >> publish()


churn_model()
