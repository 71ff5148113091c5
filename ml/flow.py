"""The churn model's daily steps, as the `churn_model` DAG (and `python -m ml`) runs them.

1. `check_drift`  - score the latest feature snapshot with the current model and compare features
   and predictions with the model's reference (`drift.compare`); write `ml.model_drift` and the
   trigger rows into `ops.data_health` (gate `model_drift`, severity warning: drift never blocks);
   decide whether to retrain: no current model, a trigger above the PSI threshold, or the model
   older than `CHURN_MAX_MODEL_AGE_DAYS` (days of data since it was trained, never wall-clock time).
2. `retrain`      - when asked: train a candidate on the labelled snapshots (time-based holdout),
   save it in the registry, promote it only if it beats the current model's AUC on the same
   holdout (`promote_if_better`), and log the decision in `decisions.jsonl`.
3. `score`        - score the latest snapshot with the current model: `ml.churn_predictions` (row
   level, warehouse only) and the aggregates the dashboard reads; rebuild `ml.model_versions`.
Then `pipelines.publishing.refresh_health_for_dashboards` copies the published `ml` and `ops` tables
into serving next to the marts as they are.

Every step is idempotent for the snapshot it works on: it replaces that as-of date's rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from core.settings import Settings
from ml import registry
from ml.drift import PREDICTION, FeatureDrift, compare
from ml.features import CATEGORICAL, FEATURES, KEY, LABEL, NUMERIC, frame_hash, load_features
from ml.settings import MLSettings, ml_settings
from ml.tables import DDL, HIGH_RISK
from ml.train import Evaluation, Split, evaluate, fit, predict, time_split

MODEL_NAME = "churn"
DRIFT_GATE, DRIFT_SUITE = "model_drift", "ml.churn_model"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Candidate:
    version: str
    model: Any
    split: Split
    evaluation: Evaluation
    metadata: dict[str, Any]
    reference: pd.DataFrame


def train_candidate(labelled: pd.DataFrame, ms: MLSettings, trained_at_as_of: dt.date) -> Candidate:
    """Fit on the older labelled snapshots, evaluate on the newest; nothing is written."""
    split = time_split(labelled, ms.holdout_snapshots)
    model = fit(split.train, ms.seed)
    holdout_scores = predict(model, split.holdout)
    evaluation = evaluate(split.holdout[LABEL].astype(int).to_numpy(), holdout_scores)
    params = model.named_steps["model"].get_params()
    data_hash = frame_hash(labelled[[*KEY, *FEATURES, LABEL]])
    identity = json.dumps({"data": data_hash, "seed": ms.seed, "params": params}, sort_keys=True, default=str)
    holdout_as_of = split.holdout_range
    version = f"{MODEL_NAME}-{holdout_as_of[1]:%Y%m%d}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
    reference = split.holdout[[*KEY, *FEATURES]].copy()
    reference[PREDICTION] = holdout_scores
    metadata = {
        "version": version,
        "model": "OneHotEncoder(country, channel, variant) + HistGradientBoostingClassifier",
        "params": {k: v for k, v in params.items() if isinstance(v, int | float | str | bool | type(None))},
        "seed": ms.seed,
        "features": {"categorical": list(CATEGORICAL), "numeric": list(NUMERIC)},
        "label": f"{LABEL}: no order in the label window after as_of_date (dbt var churn_label_days)",
        "train_as_of": [str(d) for d in split.train_range],
        "holdout_as_of": [str(d) for d in holdout_as_of],
        "trained_at_as_of": str(trained_at_as_of),
        "training_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "training_data_sha256": data_hash,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pd.__version__},
    }
    return Candidate(version, model, split, evaluation, metadata, reference)


def save_candidate(registry_dir: Path, candidate: Candidate) -> Path:
    snapshot = pd.concat(
        [candidate.split.train.assign(split="train"), candidate.split.holdout.assign(split="holdout")],
        ignore_index=True,
    )[[*KEY, *FEATURES, LABEL, "split"]]
    return registry.save_version(
        registry_dir,
        candidate.version,
        candidate.model,
        candidate.evaluation.as_dict(),
        candidate.metadata,
        snapshot,
        candidate.reference,
    )


def promote_if_better(registry_dir: Path, candidate: Candidate, ms: MLSettings, **context: Any) -> dict[str, Any]:
    """Make the (saved) candidate current only if it beats the current model on its holdout; log why."""
    current = registry.current_version(registry_dir)
    candidate_auc = candidate.evaluation.auc
    current_auc = None
    if current is None:
        promoted = candidate_auc > ms.min_auc
        reason = f"first model: holdout AUC {candidate_auc:.4f} {'>' if promoted else '<='} floor {ms.min_auc}"
    elif current == candidate.version:
        promoted = False
        current_auc = candidate_auc
        reason = "the candidate is the current model (same data, seed and parameters)"
    else:
        holdout = candidate.split.holdout
        current_scores = predict(registry.load_model(registry_dir, current), holdout)
        current_auc = evaluate(holdout[LABEL].astype(int).to_numpy(), current_scores).auc
        promoted = candidate_auc > current_auc + ms.min_auc_gain
        reason = (
            f"holdout AUC {candidate_auc:.4f} vs current {current_auc:.4f} "
            f"({'beats' if promoted else 'does not beat'} it by more than {ms.min_auc_gain})"
        )
    if promoted:
        registry.set_current(registry_dir, candidate.version)
    return registry.log_decision(
        registry_dir,
        {
            **context,
            "candidate": candidate.version,
            "candidate_auc": candidate_auc,
            "candidate_brier": candidate.evaluation.brier,
            "previous": current,
            "previous_auc": current_auc,
            "holdout_as_of": candidate.metadata["holdout_as_of"],
            "promoted": promoted,
            "current": candidate.version if promoted else current,
            "reason": reason,
        },
    )


# --- warehouse writes -----------------------------------------------------------------------------


def _connect(settings: Settings):
    from core.duckdb_connect import connect_file

    con = connect_file(settings, wait_seconds=60)
    con.execute(DDL)
    return con


def _replace(con, table: str, where: str, params: list, frame: pd.DataFrame) -> None:
    con.execute(f"delete from {table} where {where}", params)
    if len(frame):
        con.register("new_rows", frame)
        columns = ", ".join(frame.columns)
        con.execute(f"insert into {table} ({columns}) select {columns} from new_rows")
        con.unregister("new_rows")


def _drift_health(drifts: list[FeatureDrift], run_id: str, checked_at: dt.datetime, as_of: dt.date):
    from quality.results import ExpectationOutcome, GateResult, make_reason

    outcomes = tuple(
        ExpectationOutcome(
            suite=DRIFT_SUITE,
            table_name="fct_customer_churn_features",
            expectation="psi_below_threshold",
            column_name=d.feature,
            success=not d.is_drifted,
            observed_value=f"psi={d.psi:.3f} (threshold {d.threshold})",
            details={"psi": d.psi, "ks_statistic": d.ks_statistic, "kind": d.kind},
            severity="warning",
        )
        for d in drifts
        if d.role == "trigger"
    )
    rows = {"fct_customer_churn_features": drifts[0].current_rows} if drifts else {}
    return GateResult(
        gate=DRIFT_GATE,
        run_id=run_id,
        checked_at=checked_at,
        success=True,
        reason=make_reason(DRIFT_GATE, DRIFT_SUITE, outcomes, rows, str(as_of)),
        outcomes=outcomes,
        ds=str(as_of),
        row_counts=rows,
    )


# --- the daily steps ------------------------------------------------------------------------------


def check_drift(settings: Settings, run_id: str, ms: MLSettings | None = None) -> dict[str, Any]:
    """Compare the latest snapshot with the current model's reference; say whether to retrain."""
    from core.alerts import send_alert
    from quality.health import write_results

    ms = ms or ml_settings(settings)
    current = registry.current_version(ms.registry_dir)
    latest = load_features(settings.warehouse_path, latest=True)
    if latest.empty:
        raise RuntimeError("the feature mart has no latest snapshot (is_latest): is the shop's data loaded?")
    as_of = latest["as_of_date"].max()
    if current is None:
        return {"as_of_date": str(as_of), "retrain": True, "reason": "no current model", "drifted": []}
    metadata = registry.load_metadata(ms.registry_dir, current)
    reference = registry.load_reference(ms.registry_dir, current)
    latest[PREDICTION] = predict(registry.load_model(ms.registry_dir, current), latest)
    drifts = compare(reference, latest, ms.psi_threshold)
    checked_at = _now()
    rows = pd.DataFrame(
        {
            "run_id": run_id,
            "checked_at": checked_at,
            "as_of_date": as_of,
            "model_version": current,
            "reference_as_of": dt.date.fromisoformat(metadata["holdout_as_of"][1]),
            "feature": [d.feature for d in drifts],
            "feature_kind": [d.kind for d in drifts],
            "role": [d.role for d in drifts],
            "psi": [d.psi for d in drifts],
            "ks_statistic": [d.ks_statistic for d in drifts],
            "ks_pvalue": [d.ks_pvalue for d in drifts],
            "threshold": ms.psi_threshold,
            "is_drifted": [d.is_drifted for d in drifts],
            "reference_rows": [d.reference_rows for d in drifts],
            "current_rows": [d.current_rows for d in drifts],
        }
    )
    con = _connect(settings)
    try:
        con.execute("begin transaction")
        _replace(con, "ml.model_drift", "as_of_date = ? and model_version = ?", [as_of, current], rows)
        con.execute("commit")
        write_results(con, [_drift_health(drifts, run_id, checked_at, as_of)])
    finally:
        con.close()
    triggers = [d for d in drifts if d.triggers]
    age = (as_of - dt.date.fromisoformat(metadata["trained_at_as_of"])).days
    if triggers:
        reason = "drift: " + ", ".join(f"{d.feature} PSI {d.psi:.2f} > {d.threshold}" for d in triggers)
        send_alert(f"churn model drift on {as_of} ({current}): {reason}; retraining", kind="model_drift")
    elif age >= ms.max_model_age_days:
        reason = f"age: the model was trained on data up to {metadata['trained_at_as_of']}, {age} days ago"
    else:
        reason = ""
    return {
        "as_of_date": str(as_of),
        "model_version": current,
        "retrain": bool(reason),
        "reason": reason or f"no drift above {ms.psi_threshold}, model {age} days old",
        "drifted": [d.feature for d in drifts if d.is_drifted],
        "max_trigger_psi": max((d.psi for d in drifts if d.role == "trigger"), default=0.0),
    }


def retrain(settings: Settings, run_id: str, decision: dict[str, Any], ms: MLSettings | None = None) -> dict[str, Any]:
    """Train, save and maybe promote a candidate when `decision["retrain"]`; else do nothing."""
    ms = ms or ml_settings(settings)
    if not decision.get("retrain"):
        return {"retrained": False, "reason": decision.get("reason", "not needed"), "current": None}
    labelled = load_features(settings.warehouse_path, labelled=True)
    latest_as_of = dt.date.fromisoformat(decision["as_of_date"])
    candidate = train_candidate(labelled, ms, latest_as_of)
    save_candidate(ms.registry_dir, candidate)
    record = promote_if_better(
        ms.registry_dir, candidate, ms, run_id=run_id, as_of_date=str(latest_as_of), trigger=decision["reason"]
    )
    return {"retrained": True, **record}


def score(settings: Settings, run_id: str, ms: MLSettings | None = None) -> dict[str, Any]:
    """Score the latest snapshot with the current model; write predictions, aggregates, versions."""
    ms = ms or ml_settings(settings)
    current = registry.current_version(ms.registry_dir)
    if current is None:
        raise RuntimeError(f"no current churn model in {ms.registry_dir}: nothing promoted yet (decisions.jsonl)")
    latest = load_features(settings.warehouse_path, latest=True)
    as_of = latest["as_of_date"].max()
    probability = predict(registry.load_model(ms.registry_dir, current), latest)
    scored_at = _now()
    predictions = pd.DataFrame(
        {
            "as_of_date": as_of,
            "customer_id": latest["customer_id"].astype("int64"),
            "country_code": latest["country_code"],
            "main_channel": latest["main_channel"],
            "churn_probability": probability,
            "risk_band": np.where(probability >= HIGH_RISK, "high", np.where(probability >= 0.4, "medium", "low")),
            "model_version": current,
            "run_id": run_id,
            "scored_at": scored_at,
        }
    )
    segments = (
        predictions.assign(high=(predictions["churn_probability"] >= HIGH_RISK).astype(int))
        .groupby(["country_code", "main_channel"], as_index=False)
        .agg(
            customers=("customer_id", "size"),
            high_risk_customers=("high", "sum"),
            expected_churners=("churn_probability", "sum"),
            average_churn_probability=("churn_probability", "mean"),
        )
        .assign(as_of_date=as_of, model_version=current)
    )
    floors = np.minimum(np.floor(probability * 10), 9) / 10
    distribution = (
        pd.DataFrame({"band_floor": np.round(floors, 1)})
        .groupby("band_floor", as_index=False)
        .size()
        .rename(columns={"size": "customers"})
    )
    distribution["probability_band"] = [f"{f:.1f}-{f + 0.1:.1f}" for f in distribution["band_floor"]]
    distribution = distribution.assign(as_of_date=as_of, model_version=current)
    con = _connect(settings)
    try:
        con.execute("begin transaction")
        _replace(con, "ml.churn_predictions", "as_of_date = ?", [as_of], predictions)
        _replace(con, "ml.churn_risk_segments", "as_of_date = ?", [as_of], segments)
        _replace(con, "ml.churn_risk_distribution", "as_of_date = ?", [as_of], distribution)
        _replace(con, "ml.model_versions", "true", [], model_versions_frame(ms.registry_dir))
        for table in ("ml.churn_risk_segments", "ml.churn_risk_distribution"):
            con.execute(f"update {table} set is_latest = (as_of_date = (select max(as_of_date) from {table}))")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()
    return {
        "as_of_date": str(as_of),
        "model_version": current,
        "customers": len(predictions),
        "high_risk_customers": int((probability >= HIGH_RISK).sum()),
        "mean_churn_probability": round(float(probability.mean()), 4),
    }


def model_versions_frame(registry_dir: Path) -> pd.DataFrame:
    """One row per saved version, with its metrics and the last decision about it."""
    current = registry.current_version(registry_dir)
    last_decision = {d["candidate"]: d for d in registry.decisions(registry_dir)}
    promoted = {d["candidate"] for d in registry.decisions(registry_dir) if d.get("promoted")}
    rows = []
    for version in registry.versions(registry_dir):
        meta = registry.load_metadata(registry_dir, version)
        metrics = registry.load_metrics(registry_dir, version)
        rows.append(
            {
                "model_version": version,
                "trained_on_as_of": dt.date.fromisoformat(meta["holdout_as_of"][1]),
                "train_first_as_of": dt.date.fromisoformat(meta["train_as_of"][0]),
                "train_last_as_of": dt.date.fromisoformat(meta["train_as_of"][1]),
                "training_rows": meta["training_rows"],
                "holdout_rows": meta["holdout_rows"],
                "holdout_auc": metrics["auc"],
                "holdout_brier": metrics["brier"],
                "holdout_base_rate": metrics["base_rate"],
                "training_data_sha256": meta["training_data_sha256"],
                "seed": meta["seed"],
                "is_promoted": version in promoted,
                "is_current": version == current,
                "decision_reason": last_decision.get(version, {}).get("reason"),
            }
        )
    return pd.DataFrame(rows)


def run_daily(settings: Settings, run_id: str, ms: MLSettings | None = None) -> dict[str, Any]:
    """All three steps in one call (the CLI and headless runs); the DAG runs them as tasks."""
    decision = check_drift(settings, run_id, ms)
    outcome = retrain(settings, run_id, decision, ms)
    return {"drift": decision, "retrain": outcome, "score": score(settings, run_id, ms)}
