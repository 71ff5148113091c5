"""The model registry: a folder of versions, a `current` pointer and a decision log.

```
<ML_REGISTRY_DIR, default var/ml/churn>/
  versions/<version>/model.joblib               the fitted scikit-learn pipeline
                     metrics.json               holdout AUC, Brier, log loss, calibration table
                     metadata.json              features, params, seed, as-of ranges, data sha256, versions
                     training_snapshot.parquet  the exact rows trained and held out on (with the label)
                     reference.parquet          the holdout snapshot's features + predictions (drift reference)
  current.json                                  {"version": ...}: the model that scores (atomic replace)
  decisions.jsonl                               one line per retraining decision, promoted or not
```
A version's id is derived from its training data hash, seed and parameters, so retraining on the
same data gives the same id and the same files (idempotent).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.pipeline import Pipeline


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def version_dir(registry: Path, version: str) -> Path:
    return registry / "versions" / version


def save_version(
    registry: Path,
    version: str,
    model: Pipeline,
    metrics: dict[str, Any],
    metadata: dict[str, Any],
    training_snapshot: pd.DataFrame,
    reference: pd.DataFrame,
) -> Path:
    folder = version_dir(registry, version)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.joblib.tmp"
    joblib.dump(model, tmp)
    os.replace(tmp, folder / "model.joblib")
    training_snapshot.to_parquet(folder / "training_snapshot.parquet", index=False)
    reference.to_parquet(folder / "reference.parquet", index=False)
    _write_atomic(folder / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True, default=str))
    # metadata last: a version folder with metadata.json is complete
    _write_atomic(folder / "metadata.json", json.dumps(metadata, indent=2, sort_keys=True, default=str))
    return folder


def current_version(registry: Path) -> str | None:
    pointer = registry / "current.json"
    return json.loads(pointer.read_text())["version"] if pointer.exists() else None


def set_current(registry: Path, version: str) -> None:
    if not (version_dir(registry, version) / "metadata.json").exists():
        raise FileNotFoundError(f"no complete model version {version} in {registry}")
    _write_atomic(registry / "current.json", json.dumps({"version": version}) + "\n")


def load_model(registry: Path, version: str) -> Pipeline:
    return joblib.load(version_dir(registry, version) / "model.joblib")


def load_metadata(registry: Path, version: str) -> dict[str, Any]:
    return json.loads((version_dir(registry, version) / "metadata.json").read_text())


def load_metrics(registry: Path, version: str) -> dict[str, Any]:
    return json.loads((version_dir(registry, version) / "metrics.json").read_text())


def load_reference(registry: Path, version: str) -> pd.DataFrame:
    return pd.read_parquet(version_dir(registry, version) / "reference.parquet")


def versions(registry: Path) -> list[str]:
    """Complete versions, oldest training data first."""
    found = [p.parent.name for p in (registry / "versions").glob("*/metadata.json")]
    return sorted(found, key=lambda v: (load_metadata(registry, v)["holdout_as_of"][1], v))


def log_decision(registry: Path, record: dict[str, Any]) -> dict[str, Any]:
    registry.mkdir(parents=True, exist_ok=True)
    record = {"logged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **record}
    with (registry / "decisions.jsonl").open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    return record


def decisions(registry: Path) -> list[dict[str, Any]]:
    path = registry / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
