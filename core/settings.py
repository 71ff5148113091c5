"""Where everything lives and how to reach it: one place that reads the environment.

Every path and URL the stack uses comes from an environment variable with an embedded default
(documented in `.env.example`). Values are read when `get_settings()` is called, never at import
time, so tests can point a fresh settings object at a temporary folder.

A domain's own knobs live in its settings module (`quality.settings`, `governance.settings`,
`ml.settings`, `ingestion.partner_files.limits`, the marketing API client's `ClientConfig`), read
with the `env_*` functions here: a value the stack cannot use is a `SettingError` naming the
variable, which every command prints as one line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingError(ValueError):
    """A variable with a value the stack cannot use; the message names it and says what it takes."""


def env_path(name: str, default: Path) -> Path:
    """A path from the environment (`~` expanded, made absolute), else `default`."""
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def env_int(name: str, default: int, low: int, high: int | None = None) -> int:
    """A whole number from the environment, within [low, high]."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    # ASCII digits only: int() would also take '٣' or '1_000', which no one means in a port
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= (high if high is not None else int(value)):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise SettingError(f"{name}={value!r} is not a whole number {span}: fix it in .env or the environment")
    return int(value)


_DECIMAL = re.compile(r"^\d+(\.\d+)?$")


def parse_decimal(name: str, value: str, low: float = 0.0, high: float | None = None) -> float:
    """`value` (named `name` in the error) as a non-negative decimal number within [low, high]."""
    text = value.strip()
    if not (text.isascii() and _DECIMAL.match(text)) or float(text) < low or (high is not None and float(text) > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise SettingError(f"{name}={value!r} is not a number {span}: fix it in .env or the environment")
    return float(text)


def env_float(name: str, default: float, low: float = 0.0, high: float | None = None) -> float:
    """A decimal number from the environment (digits and one point: no signs, exponents or 'nan')."""
    value = os.environ.get(name, "").strip()
    return parse_decimal(name, value, low, high) if value else default


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_flag(name: str, default: bool = False) -> bool:
    """A yes/no switch from the environment: 1/true/yes/on or 0/false/no/off (any case)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise SettingError(f"{name}={value!r} is not a switch: use true or false (fix it in .env or the environment)")
    return value in _TRUE


# DuckDB's own size syntax ('3GB', '512MiB', '1.5 GB'); anything else would fail later, inside a task
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


def env_size(name: str, default: str) -> str:
    """A size in DuckDB's syntax ('3GB', '512MiB') from the environment."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not _SIZE.match(value):
        raise SettingError(f"{name}={value!r} is not a size such as 3GB or 512MiB: fix it in .env or the environment")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the stack's data and services."""

    repo_root: Path
    data_dir: Path
    var_dir: Path  # STACK_VAR_DIR: run state, alerts, governance files, the model registry, GX docs
    app_db_url: str
    lake_dir: Path
    warehouse_path: Path
    serving_path: Path
    dbt_project_dir: Path
    run_dir: Path
    airflow_home: Path
    superset_home: Path
    airflow_port: int
    superset_port: int
    duckdb_memory_limit: str
    duckdb_threads: int
    duckdb_max_temp_size: str  # the most a DuckDB process may spill to disk before it fails
    extract_workers: int  # app-DB tables landed at once (ingestion/app_db/batch.py)
    # MARTS_ENGINE: duckdb (embedded) or spark (Spark mode: loads also register the lake's days on
    # the Spark cluster, ingestion/spark_tables.py)
    marts_engine: str = "duckdb"

    @property
    def lake_raw_dir(self) -> Path:
        return self.lake_dir / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "quarantine"

    @property
    def app_db_dir(self) -> Path | None:
        """The folder of a SQLite app DB (None for a server such as PostgreSQL)."""
        if not self.app_db_url.startswith("sqlite:///"):
            return None
        return Path(self.app_db_url.removeprefix("sqlite:///").split("?")[0]).parent

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse_path.parent

    @property
    def duckdb_temp_dir(self) -> Path:
        """The warehouse's spill folder, for DuckDB operators that exceed the memory limit."""
        return spill_dir_beside(self.warehouse_path)


def spill_dir_beside(database_file: Path) -> Path:
    """Where a DuckDB file spills: a hidden folder beside it, on the same disk as the data it holds."""
    return Path(database_file).parent / ".duckdb_tmp"


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingError(f"{name}={value!r}: choose one of {', '.join(choices)} (in .env or the environment)")
    return value


def get_settings() -> Settings:
    """Read the environment now and return the stack's settings; `SettingError` names a bad value."""
    repo = env_path("STACK_REPO_ROOT", REPO_ROOT)
    data_dir = env_path("STACK_DATA_DIR", repo)
    var_dir = env_path("STACK_VAR_DIR", repo / "var")
    app_db_default = f"sqlite:///{data_dir / 'appdb' / 'shop.sqlite'}"
    warehouse_dir = env_path("WAREHOUSE_DIR", data_dir / "warehouse")
    return Settings(
        repo_root=repo,
        data_dir=data_dir,
        var_dir=var_dir,
        app_db_url=os.environ.get("APP_DB_URL") or app_db_default,
        lake_dir=env_path("LAKE_DIR", data_dir / "lake"),
        warehouse_path=env_path("WAREHOUSE_PATH", warehouse_dir / "warehouse.duckdb"),
        serving_path=env_path("SERVING_PATH", warehouse_dir / "serving.duckdb"),
        dbt_project_dir=env_path("DBT_PROJECT_DIR", repo / "dbt_project"),
        run_dir=var_dir / "run",
        airflow_home=env_path("AIRFLOW_HOME", var_dir / "airflow"),
        superset_home=env_path("SUPERSET_HOME", var_dir / "superset"),
        airflow_port=env_int("AIRFLOW_PORT", 8080, 1, 65535),
        superset_port=env_int("SUPERSET_PORT", 8088, 1, 65535),
        duckdb_memory_limit=env_size("DUCKDB_MEMORY_LIMIT", "3GB"),
        duckdb_threads=env_int("DUCKDB_THREADS", 2, 1),
        duckdb_max_temp_size=env_size("DUCKDB_MAX_TEMP_SIZE", "10GB"),
        extract_workers=env_int("EXTRACT_WORKERS", 2, 1),
        marts_engine=env_choice("MARTS_ENGINE", "duckdb", ("duckdb", "spark")),
    )
