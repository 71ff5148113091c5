"""A fixture warehouse for the dbt project: a simulated shop landed and loaded day by day, plus raw
marketing-API tables (spend and FX rates) written here, because that source is not in the pipeline yet.

The raw tables look exactly like the loader's: the source columns plus `_ds`, `_run_id`, `_loaded_at`,
one copy per extract day. The marketing data restates the previous day's spend in each extract (as
the real API does with late figures) and has FX rates on business days only, so staging's
deduplication and the marts' carry-forward of rates are exercised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from core.settings import Settings
from ingestion.app_db.batch import land_day, load_days
from ingestion.simulator.generate import eur_rate
from ingestion.simulator.run import simulate

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"

# campaign -> (marketing channel, billing currency, typical daily spend in that currency)
CAMPAIGNS: dict[str, tuple[str, str, float]] = {
    "ws-brand": ("web_search", "EUR", 600.0),
    "ws-generic": ("web_search", "USD", 950.0),
    "so-prospecting": ("social", "EUR", 700.0),
    "di-retargeting": ("display", "USD", 400.0),
    "af-partners": ("affiliate", "EUR", 300.0),
    "em-newsletter": ("email", "EUR", 40.0),
}
FX_CURRENCIES = ("EUR", "GBP", "USD", "SEK")


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def simulate_and_land(
    settings: Settings, start: dt.date, days: Sequence[dt.date], run_id: str, scale: float = 1.0
) -> None:
    """Simulate each day, then land it before the next day changes its rows (as production does)."""
    for ds in days:
        simulate(settings.app_db_url, start, ds, scale=scale, progress=False)
        land_day(settings, ds, f"{run_id}-{ds}")


def load_shop(settings: Settings, days: Iterable[dt.date], run_id: str) -> None:
    load_days(settings, list(days), run_id)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) for the given parts."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def spend_row(spend_date: dt.date, campaign_id: str, extract_day: dt.date) -> tuple:
    """One campaign's figures for a day as reported in a given extract (a restatement differs)."""
    channel, currency, typical = CAMPAIGNS[campaign_id]
    restated = 1.0 + 0.05 * _unit("restate", campaign_id, spend_date, extract_day)
    spend = round(typical * (0.7 + 0.6 * _unit("spend", campaign_id, spend_date)) * restated, 2)
    impressions = int(spend * (60 + 40 * _unit("imp", campaign_id, spend_date)))
    clicks = int(impressions * (0.005 + 0.03 * _unit("ctr", campaign_id, spend_date)))
    return (spend_date, channel, campaign_id, currency, spend, impressions, clicks)


def reference_rate(currency: str, day: dt.date) -> float:
    """The API's reference rate: close to, but not the same as, the shop's checkout rate."""
    if currency == "EUR":
        return 1.0
    return round(eur_rate(currency, day) * (1 + 0.004 * math.cos(day.toordinal() / 5.0)), 6)


def marketing_rows(extract_day: dt.date, first_day: dt.date) -> tuple[list[tuple], list[tuple]]:
    """What one day's extract of the marketing API holds: that day's spend, a restatement of the
    previous day's (from `first_day` on), and (on business days) that day's reference rates."""
    spend_dates = [d for d in (extract_day - dt.timedelta(days=1), extract_day) if d >= first_day]
    spend = [spend_row(spend_date, campaign_id, extract_day) for spend_date in spend_dates for campaign_id in CAMPAIGNS]
    rates = (
        [(extract_day, currency, reference_rate(currency, extract_day)) for currency in FX_CURRENCIES]
        if extract_day.weekday() < 5
        else []
    )
    return spend, rates


def write_marketing_raw(warehouse_path: Path, days: Sequence[dt.date], run_id: str, first_day: dt.date) -> None:
    """Replace `days` of raw.marketing_spend and raw.exchange_rates, the way the loader replaces days.
    `first_day` is the first day the API reports (nothing is restated before it)."""
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb.connect(str(warehouse_path)) as con:
        con.execute("create schema if not exists raw")
        con.execute(
            "create table if not exists raw.marketing_spend (spend_date date, channel varchar, campaign_id varchar, "
            "currency varchar, spend double, impressions bigint, clicks bigint, "
            "_ds date, _run_id varchar, _loaded_at timestamp)"
        )
        con.execute(
            "create table if not exists raw.exchange_rates (rate_date date, currency varchar, eur_rate double, "
            "_ds date, _run_id varchar, _loaded_at timestamp)"
        )
        for table in ("marketing_spend", "exchange_rates"):
            con.execute(f"delete from raw.{table} where _ds in (select unnest(?::date[]))", [list(days)])
        for ds in days:
            spend, rates = marketing_rows(ds, first_day)
            con.executemany(
                "insert into raw.marketing_spend values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row, ds, run_id, loaded_at) for row in spend],
            )
            if rates:
                con.executemany(
                    "insert into raw.exchange_rates values (?, ?, ?, ?, ?, ?)",
                    [(*row, ds, run_id, loaded_at) for row in rates],
                )


def dbt_env(warehouse_path: Path, target_path: Path, pii_key: str) -> dict[str, str]:
    """Environment for a dbt run on a fixture warehouse, never touching dbt_project/target."""
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(warehouse_path),
        "DBT_TARGET": "prod",
        "PII_HASH_KEY": pii_key,
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DO_NOT_TRACK": "1",
    }
    env.pop("DBT_DEV_PATH", None)
    return env


def run_dbt(
    env: dict[str, str], *args: str, project_dir: Path = DBT_PROJECT, check: bool = True
) -> subprocess.CompletedProcess:
    """`dbt <args>` on the project; raises with dbt's output when it fails and check is set."""
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), *args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)],
        env=env,
        cwd=project_dir,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}")
    return result
