"""Product science: the churn model, from the dbt feature mart to predictions on a dashboard.

Airflow-free; `dags/churn_model.py` only wires these steps (see `flow.py`):

    ml.fct_customer_churn_features (dbt, point in time)
        -> drift.py     PSI + KS of features and predictions vs the model's training reference
        -> train.py     retrain when drift or age says so (scikit-learn, seeded, time-based holdout)
        -> registry.py  versions on disk; promote only if the candidate beats `current` on the holdout
        -> score.py     score the latest snapshot; predictions + aggregates into the warehouse `ml` schema
        -> serving.publish.publish_health copies the aggregates (no customer rows) into serving
"""
