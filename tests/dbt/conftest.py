"""One fixture warehouse per session, built the way production builds it, in two steps.

A shop is simulated for FIRST_DAYS days, each day landed right after it is simulated and loaded into
`raw` (the real ingestion code); `dbt build` runs before the marketing API has delivered anything
(its staging must build empty, with a warning). Then LATER_DAYS more days arrive (changing earlier
orders' status, adding returns), one old day is re-run, the raw marketing/FX tables appear with the
whole history, and `dbt build` runs again: the incremental facts take the incremental path. Every
test then compares the marts with an independent computation from the app DB or the fixture data.

dbt writes its artifacts to a temporary target path (never dbt_project/target, which Cosmos reads).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ingestion.app_db.batch import land_day
from tests.conftest import DAY0, stack_environment
from tests.dbt.fixture_warehouse import (
    days_between,
    dbt_env,
    load_shop,
    run_dbt,
    simulate_and_land,
    write_marketing_raw,
)

FIRST_DAYS = 40
LATER_DAYS = 12
SCALE = 0.5
DAYS = days_between(DAY0, DAY0 + dt.timedelta(days=FIRST_DAYS + LATER_DAYS - 1))
RERUN_DAY = DAYS[FIRST_DAYS - 3]  # an already-loaded day run again with the later days
PII_KEY = "dbt-tests-key-6f1c2a9e"


@dataclass(frozen=True)
class BuiltWarehouse:
    warehouse_path: Path
    app_db_path: Path
    target_path: Path
    env: dict[str, str]
    first_build_stdout: str
    second_build_stdout: str

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse_path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def frame(self, sql: str):
        with duckdb.connect(str(self.warehouse_path), read_only=True) as con:
            return con.execute(sql).df()

    def app_db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.app_db_path)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    from core.settings import get_settings

    root = tmp_path_factory.mktemp("dbt-stack")
    with stack_environment(root, PII_KEY):
        settings = get_settings()
        target = root / "dbt-target"
        env = dbt_env(settings.warehouse_path, target, PII_KEY)

        first, later = DAYS[:FIRST_DAYS], DAYS[FIRST_DAYS:]
        simulate_and_land(settings, DAY0, first, "history", scale=SCALE)
        load_shop(settings, first, "history")
        first_build = run_dbt(env, "build")

        simulate_and_land(settings, DAY0, later, "daily", scale=SCALE)
        land_day(settings, RERUN_DAY, "rerun")
        load_shop(settings, [RERUN_DAY, *later], "daily")
        write_marketing_raw(settings.warehouse_path, DAYS, "marketing", first_day=DAY0)
        second_build = run_dbt(env, "build")
    return BuiltWarehouse(
        warehouse_path=settings.warehouse_path,
        app_db_path=Path(settings.app_db_url.removeprefix("sqlite:///")),
        target_path=target,
        env=env,
        first_build_stdout=first_build.stdout,
        second_build_stdout=second_build.stdout,
    )
