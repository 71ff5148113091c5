"""Running the dbt CLI for the stack (parse for Cosmos' manifest, build for headless runs, docs).

Analysts call the same commands through make (`make dbt-build`, `make docs`); the environment
passes the warehouse path and the PII hashing key to the profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings


def postgres_key_options(key: str) -> str:
    """PGOPTIONS carrying the pseudonymisation key as the session setting the postgres target reads.

    libpq splits PGOPTIONS on spaces, so a space inside the key is escaped with a backslash.
    """
    escaped = key.replace("\\", "\\\\").replace(" ", "\\ ")
    return f"-c shop.pii_hash_key={escaped}"


def dbt_env(settings: Settings, target: str = "prod") -> dict[str, str]:
    key_options = {}
    if target == "postgres" and os.environ.get("PII_HASH_KEY"):
        key_options = {"PGOPTIONS": postgres_key_options(os.environ["PII_HASH_KEY"])}
    return {
        **os.environ,
        **key_options,
        # An absolute path: the profile's plugin folder, wherever dbt's working directory is.
        "DBT_PLUGINS_DIR": str(settings.dbt_project_dir / "plugins"),
        "WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_TARGET": target,
        "DBT_DEV_PATH": os.environ.get("DBT_DEV_PATH", str(settings.warehouse_dir / "dev.duckdb")),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # A dev (or postgres) build must not overwrite the manifest Airflow renders the prod DAG from.
        **({"DBT_TARGET_PATH": f"target-{target}"} if target != "prod" else {}),
        "DO_NOT_TRACK": "1",
    }


def run_dbt(settings: Settings, *args: str, target: str = "prod", quiet: bool = False) -> None:
    """Run `dbt <args>` in the project; raise with dbt's own last lines on failure."""
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [
        str(dbt),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
    ]
    result = subprocess.run(  # noqa: S603 - our own binary and arguments
        cmd,
        env=dbt_env(settings, target),
        cwd=settings.dbt_project_dir,
        capture_output=quiet,
        text=True,
    )
    if result.returncode != 0:
        detail = "\n".join((result.stdout or "").strip().splitlines()[-20:]) if quiet else "(see dbt output above)"
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{detail}")


def marts_target(settings: Settings) -> tuple[str, tuple[str, ...]]:
    """The dbt target the marts build on (`MARTS_ENGINE`) and the selection flags it needs.

    On Spark the DuckDB-only models (tag `duckdb_only`: written in DuckDB's SQL on purpose) are left out.
    """
    if settings.marts_engine == "spark":
        return "spark", ("--exclude", "tag:duckdb_only")
    return "prod", ()


def run_results_path(settings: Settings, target: str = "prod") -> Path:
    """The `run_results.json` of `target`'s last dbt command (for prod, DBT_TARGET_PATH moves it)."""
    if target != "prod":
        return settings.dbt_project_dir / f"target-{target}" / "run_results.json"
    target = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    if not target.is_absolute():
        target = settings.dbt_project_dir / target
    return target / "run_results.json"
