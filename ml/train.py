"""Training and evaluating a churn model with scikit-learn, reproducibly from a seed.

Model: one-hot country, channel and experiment variant, then a histogram gradient-boosted tree
ensemble (`HistGradientBoostingClassifier`, no early stopping, fixed `random_state`): it needs no
scaling, handles the skewed counts and money features, and is deterministic, so the same data and
seed give the same model, metrics and predictions.

Holdout: by time, never at random. The newest labelled snapshot(s) are the holdout; the model
learns from the earlier ones only. The holdout is also where a candidate and the current model are
compared before promotion (`registry.promote_if_better`). Caveat, documented: consecutive weekly
snapshots' label windows overlap in calendar time (a 30-day label, weekly snapshots); with the
short demo history there is no room to purge that overlap without leaving nothing to learn from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ml.features import CATEGORICAL, LABEL, NUMERIC

CALIBRATION_BINS = 10


class NotEnoughData(RuntimeError):
    """Too few labelled snapshots (or one class only) to train and hold out."""


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame

    @property
    def train_range(self) -> tuple[dt.date, dt.date]:
        return min(self.train["as_of_date"]), max(self.train["as_of_date"])

    @property
    def holdout_range(self) -> tuple[dt.date, dt.date]:
        return min(self.holdout["as_of_date"]), max(self.holdout["as_of_date"])


@dataclass
class Evaluation:
    auc: float
    brier: float
    log_loss: float
    base_rate: float
    rows: int
    calibration: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "auc": self.auc,
            "brier": self.brier,
            "log_loss": self.log_loss,
            "base_rate": self.base_rate,
            "rows": self.rows,
            "calibration": self.calibration,
        }


def time_split(labelled: pd.DataFrame, holdout_snapshots: int = 1) -> Split:
    """The newest `holdout_snapshots` as-of dates are the holdout, the earlier ones train."""
    dates = sorted(labelled["as_of_date"].unique())
    if len(dates) < holdout_snapshots + 1:
        raise NotEnoughData(
            f"{len(dates)} labelled snapshot(s); need {holdout_snapshots + 1} (more history, or a shorter label window)"
        )
    first_holdout = dates[-holdout_snapshots]
    split = Split(
        labelled[labelled["as_of_date"] < first_holdout].reset_index(drop=True),
        labelled[labelled["as_of_date"] >= first_holdout].reset_index(drop=True),
    )
    for name, part in (("train", split.train), ("holdout", split.holdout)):
        if part[LABEL].nunique() < 2:
            raise NotEnoughData(f"the {name} snapshots hold one class only")
    return split


def build_pipeline(seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=200,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("model", model)])


def inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns, typed the same way at training and scoring time."""
    x = frame[list(CATEGORICAL) + list(NUMERIC)].copy()
    for column in CATEGORICAL:
        x[column] = x[column].astype(str)
    for column in NUMERIC:
        x[column] = x[column].astype("float64")
    return x


def fit(train: pd.DataFrame, seed: int) -> Pipeline:
    pipeline = build_pipeline(seed)
    pipeline.fit(inputs(train), train[LABEL].astype(int).to_numpy())
    return pipeline


def predict(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Churn probability per row."""
    return pipeline.predict_proba(inputs(frame))[:, 1]


def evaluate(y_true: np.ndarray, scores: np.ndarray) -> Evaluation:
    """AUC, Brier score, log loss and a calibration table (10 equal-width probability bins)."""
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(scores, dtype=float), 1e-6, 1 - 1e-6)
    bins = np.minimum((p * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    calibration = [
        {
            "bin": f"{b / CALIBRATION_BINS:.1f}-{(b + 1) / CALIBRATION_BINS:.1f}",
            "rows": int((bins == b).sum()),
            "mean_predicted": round(float(p[bins == b].mean()), 6),
            "observed_rate": round(float(y[bins == b].mean()), 6),
        }
        for b in range(CALIBRATION_BINS)
        if (bins == b).any()
    ]
    return Evaluation(
        auc=round(float(roc_auc_score(y, p)), 6),
        brier=round(float(brier_score_loss(y, p)), 6),
        log_loss=round(float(log_loss(y, p)), 6),
        base_rate=round(float(y.mean()), 6),
        rows=len(y),
        calibration=calibration,
    )
