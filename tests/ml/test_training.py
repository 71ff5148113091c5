"""Training: reproducible from a seed, learnable signal, promotion only on improvement."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd

from core.settings import Settings
from ml import registry
from ml.features import LABEL, load_features
from ml.flow import promote_if_better, save_candidate, train_candidate
from ml.settings import ml_settings
from ml.train import predict
from tests.ml.conftest import Shop

TODAY = dt.date(2026, 8, 9)  # the day after the shop's last day


def _labelled(shop: Shop) -> pd.DataFrame:
    return load_features(shop.late, labelled=True)


def test_training_is_reproducible_from_a_seed(shop: Shop, stack: Settings) -> None:
    labelled = _labelled(shop)
    ms = ml_settings(stack)
    first = train_candidate(labelled, ms, TODAY)
    second = train_candidate(labelled.sample(frac=1.0, random_state=3), ms, TODAY)  # row order must not matter
    assert first.version == second.version
    assert first.evaluation.as_dict() == second.evaluation.as_dict()
    holdout = first.split.holdout
    assert np.array_equal(predict(first.model, holdout), predict(second.model, holdout))

    a, b = stack.data_dir / "registry-a", stack.data_dir / "registry-b"
    save_candidate(a, first)
    save_candidate(b, second)
    for name in ("metrics.json", "metadata.json"):
        assert (registry.version_dir(a, first.version) / name).read_text() == (
            registry.version_dir(b, second.version) / name
        ).read_text()
    metadata = json.loads((registry.version_dir(a, first.version) / "metadata.json").read_text())
    assert metadata["training_data_sha256"] and metadata["seed"] == ms.seed
    assert metadata["train_as_of"][1] < metadata["holdout_as_of"][0], "the holdout is later than all training data"
    snapshot = pd.read_parquet(registry.version_dir(a, first.version) / "training_snapshot.parquet")
    assert len(snapshot) == len(labelled) and set(snapshot["split"]) == {"train", "holdout"}


def test_the_simulated_churn_signal_is_learnable(shop: Shop, stack: Settings) -> None:
    candidate = train_candidate(_labelled(shop), ml_settings(stack), TODAY)
    evaluation = candidate.evaluation
    assert evaluation.auc > 0.7, evaluation.as_dict()  # measured 0.78 at this size
    assert 0.0 < evaluation.brier < evaluation.base_rate * (1 - evaluation.base_rate), "better than the base rate"
    # calibrated enough to be read as probabilities: each well-filled bin within 0.15 of what happened
    for row in evaluation.calibration:
        if row["rows"] >= 200:
            assert abs(row["mean_predicted"] - row["observed_rate"]) < 0.15, row


def _weak(labelled: pd.DataFrame) -> pd.DataFrame:
    """The same rows with the training snapshots' labels shuffled (the holdout keeps the truth)."""
    weak = labelled.copy()
    train = weak["as_of_date"] < weak["as_of_date"].max()
    rng = np.random.default_rng(0)
    weak.loc[train, LABEL] = rng.permutation(weak.loc[train, LABEL].to_numpy())
    return weak


def test_a_candidate_is_promoted_only_when_it_beats_the_current_model(shop: Shop, stack: Settings) -> None:
    labelled = _labelled(shop)
    ms = ml_settings(stack)
    good = train_candidate(labelled, ms, TODAY)
    weak = train_candidate(_weak(labelled), ms, TODAY)
    assert weak.evaluation.auc < good.evaluation.auc - 0.1
    for candidate in (good, weak):
        save_candidate(ms.registry_dir, candidate)

    # Fresh registry, min AUC floor lowered so the weak model becomes the first current one...
    lenient = dataclasses.replace(ms, min_auc=0.0)
    assert promote_if_better(ms.registry_dir, weak, lenient)["promoted"]
    # ... then the good one beats it on the same holdout and replaces it.
    record = promote_if_better(ms.registry_dir, good, ms)
    assert record["promoted"] and record["previous"] == weak.version
    assert registry.current_version(ms.registry_dir) == good.version
    # The weak one again, and the good one again: neither is an improvement over the current.
    assert not promote_if_better(ms.registry_dir, weak, ms)["promoted"]
    assert not promote_if_better(ms.registry_dir, good, ms)["promoted"]
    assert registry.current_version(ms.registry_dir) == good.version

    log = registry.decisions(ms.registry_dir)
    assert [(d["candidate"], d["promoted"]) for d in log] == [
        (weak.version, True),
        (good.version, True),
        (weak.version, False),
        (good.version, False),
    ]
    assert all(d["reason"] for d in log)
    assert log[2]["previous_auc"] == good.evaluation.auc and log[2]["candidate_auc"] == weak.evaluation.auc


def test_a_first_model_below_the_auc_floor_is_not_promoted(shop: Shop, stack: Settings) -> None:
    ms = ml_settings(stack)
    weak = train_candidate(_weak(_labelled(shop)), ms, TODAY)
    save_candidate(ms.registry_dir, weak)
    record = promote_if_better(ms.registry_dir, weak, ms)
    assert not record["promoted"] and registry.current_version(ms.registry_dir) is None
    assert "floor" in record["reason"]
