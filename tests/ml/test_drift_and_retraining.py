"""Drift: clean data is not flagged, injected drift is, and it triggers retraining; then scoring and
publishing the aggregates (never a customer row) to serving."""

from __future__ import annotations

import json

import duckdb

from core.settings import Settings
from ml import registry
from ml.drift import psi_categorical, psi_numeric
from ml.flow import check_drift, retrain, run_daily, score
from ml.settings import ml_settings
from serving.publish import publish_health
from tests.ml.conftest import Shop
from tests.superset.serving_fixture import write_serving_file


def _rows(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        return con.execute(sql).fetchall()


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 5000)
    assert psi_numeric(reference, reference) == 0.0
    assert psi_numeric(reference, rng.normal(0, 1, 5000)) < 0.02
    assert 0.1 < psi_numeric(reference, rng.normal(0.5, 1, 5000)) < psi_numeric(reference, rng.normal(1, 1, 5000))
    shares = pd.Series(["web"] * 55 + ["mobile"] * 35 + ["marketplace"] * 10)
    shifted = pd.Series(["web"] * 35 + ["mobile"] * 25 + ["marketplace"] * 40)
    assert psi_categorical(shares, shares) == 0.0 and psi_categorical(shares, shifted) > 0.25


def test_clean_data_is_not_flagged_and_injected_drift_triggers_retraining(shop: Shop, stack: Settings) -> None:
    ms = ml_settings(stack)
    shop.install(stack, "early")
    first = run_daily(stack, "day-1", ms)
    assert first["drift"]["reason"] == "no current model" and first["retrain"]["promoted"]

    # The same undrifted shop a day later: the reference (newest labelled snapshot, 30+ days older
    # than the scored one) and today's snapshot differ only by time: nothing triggers.
    clean = check_drift(stack, "day-2", ms)
    assert clean["retrain"] is False, clean
    assert clean["max_trigger_psi"] < ms.psi_threshold

    # The shop after 16 days of drift (marketplace share up, bigger baskets): detected, and retraining asked.
    shop.install(stack, "late")
    drifted = check_drift(stack, "day-3", ms)
    assert drifted["retrain"] is True and drifted["reason"].startswith("drift:"), drifted
    assert {"units_per_order_30d", "marketplace_order_share_30d"} <= set(drifted["drifted"])

    rows = _rows(stack, "select feature, role, is_drifted from wh.ml.model_drift where run_id = 'day-3'")
    assert ("units_per_order_30d", "trigger", True) in rows
    health = _rows(
        stack,
        "select column_name, status, severity from wh.ops.data_health where gate = 'model_drift' and run_id = 'day-3'",
    )
    assert ("units_per_order_30d", "warned", "warning") in health and ("country_code", "passed", "warning") in health
    alerts = [json.loads(line) for line in (stack.var_dir / "alerts.jsonl").read_text().splitlines()]
    assert any(a.get("kind") == "model_drift" and "units_per_order_30d" in a["summary"] for a in alerts)

    # Retraining on the newer labelled snapshots: a new version, compared and logged either way.
    outcome = retrain(stack, "day-3", drifted, ms)
    assert outcome["retrained"] and outcome["candidate"] != first["retrain"]["candidate"]
    assert outcome["previous"] == first["retrain"]["candidate"] and outcome["previous_auc"] is not None
    expected = outcome["candidate"] if outcome["promoted"] else outcome["previous"]
    assert registry.current_version(ms.registry_dir) == expected
    assert len(registry.decisions(ms.registry_dir)) == 2


def test_scores_are_written_and_only_aggregates_are_published(shop: Shop, stack: Settings) -> None:
    ms = ml_settings(stack)
    shop.install(stack, "late")
    result = run_daily(stack, "day-1", ms)
    again = score(stack, "day-1-retry", ms)  # a retried task replaces the day's rows
    assert again["customers"] == result["score"]["customers"] > 1000
    ((as_of, customers, versions),) = _rows(
        stack, "select max(as_of_date)::varchar, count(*), count(distinct model_version) from wh.ml.churn_predictions"
    )
    assert (as_of, customers, versions) == (result["score"]["as_of_date"], again["customers"], 1)
    segments = _rows(stack, "select sum(customers), sum(high_risk_customers) from wh.ml.churn_risk_segments")
    assert segments == [(again["customers"], again["high_risk_customers"])]

    serving = stack.serving_path
    write_serving_file(serving)  # the marts as published by elt_marts
    published = publish_health(stack.warehouse_path, serving, "churn-publish", settings=stack)
    assert published.tables["ml.churn_risk_segments"] > 0 and published.tables["ml.model_versions"] == 1
    with duckdb.connect() as con:
        con.execute(f"attach '{serving}' as s (read_only)")
        served = {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = 's' and table_schema = 'ml'"
        ).fetchall()}  # fmt: skip
        keyed = con.execute(
            "select count(*) from information_schema.columns where table_catalog = 's' and column_name = 'customer_id'"
            " and table_schema = 'ml'"
        ).fetchall()[0][0]
        auc = con.execute("select holdout_auc, is_current from s.ml.model_versions").fetchall()
    assert served == {"churn_risk_segments", "churn_risk_distribution", "model_versions", "model_drift"}
    assert keyed == 0, "no per-customer rows reach serving"
    assert auc[0][1] is True and auc[0][0] > 0.7
