"""Drift: how far today's features and predictions are from the model's training reference.

Implemented with numpy and scipy, no drift library (Evidently is not installed here and would pull
its own pinned stack into the pipeline environment):

- **PSI** (population stability index), per feature and for the predicted churn probability:
  `sum((cur - ref) * ln(cur / ref))` over bins. Numeric values use the reference's deciles as bin
  edges (ties merged), categories use their values (one bin each, unseen categories pooled);
  empty bins count as 1e-4 so the log stays finite. Rule of thumb: < 0.1 stable, 0.1-0.25 a
  moderate shift, > 0.25 a major one; the trigger threshold is `CHURN_PSI_THRESHOLD` (0.2).
- **KS** (two-sample Kolmogorov-Smirnov, `scipy.stats.ks_2samp`) per numeric feature, recorded
  for diagnosis only: with thousands of customers its p-value is tiny for shifts too small to
  matter, so it never triggers on its own.

Which features trigger retraining: the *mix* features (basket, order value, channel, returns,
country, experiment; the 30-day ones among customers with a recent order, so a change shows within
days rather than diluted by lifetime averages) and the prediction. Features that grow with the shop's and customers' age
(tenure, recency, lifetime and window counts) shift by themselves in a young shop: the reference is
at least one label window (30 days) old by construction. They are measured and shown as `report`
rows, and the age rule (`CHURN_MAX_MODEL_AGE_DAYS`) retrains for them on a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from ml.features import CATEGORICAL, NUMERIC

PREDICTION = "churn_probability"
PSI_BINS = 10
EPSILON = 1e-4
# Features that drift by themselves as the shop and its customers age: report only (see above).
AGE_DEPENDENT = frozenset(
    {
        "tenure_days",
        "days_since_last_order",
        "orders_total",
        "orders_30d",
        "orders_90d",
        "revenue_eur_total",
        "revenue_eur_90d",
        "returns_90d",
        "sessions_total",
        "sessions_30d",
        "days_since_last_session",
    }
)


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical | prediction
    role: str  # trigger | report
    psi: float
    ks_statistic: float | None
    ks_pvalue: float | None
    reference_rows: int
    current_rows: int
    threshold: float

    @property
    def is_drifted(self) -> bool:
        return self.psi > self.threshold

    @property
    def triggers(self) -> bool:
        return self.role == "trigger" and self.is_drifted


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    ref = np.clip(ref_counts / max(ref_counts.sum(), 1), EPSILON, None)
    cur = np.clip(cur_counts / max(cur_counts.sum(), 1), EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI with the reference's quantiles as bin edges."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    size = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=size)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=size)
    return _psi_from_counts(ref_counts.astype(float), cur_counts.astype(float))


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    """PSI over category shares; categories unseen in the reference share one bin."""
    categories = sorted(set(reference.astype(str)))
    unseen = "\x00unseen"
    ref = reference.astype(str).value_counts().reindex([*categories, unseen], fill_value=0)
    cur_values = current.astype(str).where(current.astype(str).isin(categories), unseen)
    cur = cur_values.value_counts().reindex([*categories, unseen], fill_value=0)
    return _psi_from_counts(ref.to_numpy(dtype=float), cur.to_numpy(dtype=float))


def compare(reference: pd.DataFrame, current: pd.DataFrame, threshold: float) -> list[FeatureDrift]:
    """One FeatureDrift per feature (and the prediction, when both frames carry it)."""
    results = []
    for feature in CATEGORICAL:
        psi = round(psi_categorical(reference[feature], current[feature]), 6)
        results.append(
            FeatureDrift(feature, "categorical", "trigger", psi, None, None, len(reference), len(current), threshold)
        )
    numeric = [*NUMERIC, PREDICTION] if PREDICTION in reference and PREDICTION in current else list(NUMERIC)
    for feature in numeric:
        # Missing values (a 30-day mix without a recent order) are left out: the mix among the
        # customers who have one is what drifts; how many have one changes with the shop's age.
        ref = reference[feature].dropna().to_numpy(dtype=float)
        cur = current[feature].dropna().to_numpy(dtype=float)
        if len(ref) == 0 or len(cur) == 0:
            continue
        ks = ks_2samp(ref, cur)
        results.append(
            FeatureDrift(
                feature,
                "prediction" if feature == PREDICTION else "numeric",
                "report" if feature in AGE_DEPENDENT else "trigger",
                round(psi_numeric(ref, cur), 6),
                round(float(ks.statistic), 6),
                float(ks.pvalue),
                len(ref),
                len(cur),
                threshold,
            )
        )
    return results
