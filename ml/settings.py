"""The churn model's knobs, read from the environment when asked (never at import time).

| variable | default | meaning |
| --- | --- | --- |
| `ML_REGISTRY_DIR` | `<STACK_VAR_DIR>/ml/churn` | the model registry folder |
| `CHURN_PSI_THRESHOLD` | 0.2 | a trigger feature (or the prediction) with PSI above this is drift |
| `CHURN_MAX_MODEL_AGE_DAYS` | 28 | retrain when the current model's newest training data is older (data days) |
| `CHURN_MIN_AUC_GAIN` | 0.0 | a candidate is promoted only if its holdout AUC beats the current one's by more |
| `CHURN_MIN_AUC` | 0.6 | the first model is promoted only above this holdout AUC |
| `CHURN_SEED` | 42 | the training seed (same data + seed = same model, metrics and predictions) |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings, env_float, env_int, env_path, get_settings


@dataclass(frozen=True)
class MLSettings:
    registry_dir: Path
    psi_threshold: float = 0.2
    max_model_age_days: int = 28
    min_auc_gain: float = 0.0
    min_auc: float = 0.6
    seed: int = 42
    holdout_snapshots: int = 1


def ml_settings(settings: Settings | None = None) -> MLSettings:
    """The churn model's knobs; a value it cannot use is a `SettingError` naming the variable."""
    settings = settings or get_settings()
    return MLSettings(
        registry_dir=env_path("ML_REGISTRY_DIR", settings.var_dir / "ml" / "churn"),
        psi_threshold=env_float("CHURN_PSI_THRESHOLD", 0.2),
        max_model_age_days=env_int("CHURN_MAX_MODEL_AGE_DAYS", 28, 1),
        min_auc_gain=env_float("CHURN_MIN_AUC_GAIN", 0.0, 0.0, 1.0),
        min_auc=env_float("CHURN_MIN_AUC", 0.6, 0.0, 1.0),
        seed=env_int("CHURN_SEED", 42, 0),
    )
