"""One small simulated shop for the churn-model tests, built once per session in two stages.

The shop is simulated with drift injected from DRIFT_DAY (channel mix and basket size). Stage
`early` stops before the drift: every day simulated, landed and loaded with the real ingestion
code, then dbt builds the feature mart. Stage `late` continues the same shop past DRIFT_DAY (new
orders, status changes and returns of old orders arrive) and dbt builds again, with the mart's tests.
Each stage's warehouse is kept as a file; a test copies the one it needs into its own stack.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from ingestion.app_db.batch import land_day
from tests.conftest import DAY0, stack_environment
from tests.dbt.fixture_warehouse import days_between, dbt_env, load_shop, run_dbt

SCALE = 0.7
# The early stage is long enough (more than 121 days) for the late build to carry totals from
# before its recent window into the snapshots (see fct_customer_churn_features), not only window them.
EARLY_DAYS, LATE_DAYS = 140, 160
DRIFT_DAY = DAY0 + dt.timedelta(days=EARLY_DAYS)
PII_KEY = "ml-tests-key"


@dataclass(frozen=True)
class Shop:
    early: Path  # warehouse after EARLY_DAYS days, before the drift
    late: Path  # the same shop after LATE_DAYS days, drifted since DRIFT_DAY
    build_stdout: str
    dbt_env: dict[str, str]  # the environment the stages were built with (its own target path)

    def install(self, settings: Settings, stage: str) -> Path:
        """Copy a stage's warehouse to `settings.warehouse_path` (replacing what is there)."""
        settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(getattr(self, stage), settings.warehouse_path)
        return settings.warehouse_path


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    from core.settings import get_settings

    root = tmp_path_factory.mktemp("ml-shop")
    with stack_environment(root, PII_KEY):
        settings = get_settings()
        env = dbt_env(settings.warehouse_path, root / "dbt-target", PII_KEY)
        select = ["--select", "+fct_customer_churn_features", "--indirect-selection", "cautious"]
        stages = {}
        for stage, first, last in (("early", 0, EARLY_DAYS), ("late", EARLY_DAYS, LATE_DAYS)):
            days = days_between(DAY0 + dt.timedelta(days=first), DAY0 + dt.timedelta(days=last - 1))
            for ds in days:  # each day landed before the next one changes its rows, as in production
                _simulate(settings, ds)
                land_day(settings, ds, f"{stage}-{ds}")
            load_shop(settings, days, stage)
            build = run_dbt(env, "build" if stage == "late" else "run", *select)
            stages[stage] = root / f"{stage}.duckdb"
            shutil.copyfile(settings.warehouse_path, stages[stage])
    return Shop(stages["early"], stages["late"], build.stdout, env)


def _simulate(settings: Settings, ds: dt.date) -> None:
    from ingestion.simulator.run import simulate

    simulate(settings.app_db_url, DAY0, ds, scale=SCALE, drift_from=DRIFT_DAY, progress=False)
