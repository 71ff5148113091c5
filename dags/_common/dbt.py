"""Cosmos configuration for the dbt project: each model becomes a task in the Airflow UI.

The dbt manifest (built by `make dbt-parse`) is loaded instead of running `dbt ls` at parse
time (~0.1 s vs 5-10 s).

How dbt runs is chosen by `DBT_EXECUTION_MODE`:

* `watcher` (default): Cosmos' `ExecutionMode.WATCHER`. One task (`dbt_producer_watcher`) runs a
  single `dbt build` of the whole project - one dbt start-up, dbt's own ordering - and every
  model still has its own task in the UI, a sensor that turns green or red when dbt reports
  that model (and its tests) done. Measured on this machine: about as fast as `dbt build`
  from a terminal, versus one dbt start-up per model in `local` (README, "ELT").
* `local`: `ExecutionMode.LOCAL`, one `dbt build` subprocess per model (model + its tests),
  so a single model can be retried by clearing just its task. Slower, but the most granular.

Where dbt builds follows `MARTS_ENGINE`: `duckdb` (the embedded default) the `prod` target, the
DuckDB warehouse; `spark` the `spark` target, the Spark cluster's Thrift server, with the
DuckDB-only models (tag `duckdb_only`, `models/ml`) left out of the graph and of the build.

Only the task that runs dbt writes to DuckDB, so only it takes the one-slot warehouse pool.
Why watcher by default: docs/decisions/0007-cosmos-watcher-mode.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from core.dbt_cli import marts_target
from core.dbt_manifest import manifest_without
from core.settings import get_settings

EXECUTION_MODES = {"watcher": ExecutionMode.WATCHER, "local": ExecutionMode.LOCAL}


def execution_mode() -> ExecutionMode:
    name = os.environ.get("DBT_EXECUTION_MODE", "watcher").strip().lower()
    if name not in EXECUTION_MODES:
        raise ValueError(f"DBT_EXECUTION_MODE={name!r}: choose one of {sorted(EXECUTION_MODES)}")
    return EXECUTION_MODES[name]


def dbt_configs() -> dict:
    settings = get_settings()
    mode = execution_mode()
    target, _ = marts_target(settings)
    on_spark = target == "spark"
    project = settings.dbt_project_dir
    manifest = project / "target" / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run `make dbt-parse` (make run does it)")
    if on_spark:  # the graph without the DuckDB-only models and their tests (core/dbt_manifest.py)
        manifest = manifest_without(manifest, "duckdb_only", manifest.with_name("manifest-spark.json"))
    dbt_bin = Path(sys.executable).with_name("dbt")
    return {
        "project_config": ProjectConfig(
            dbt_project_path=project,
            manifest_path=manifest,
            install_dbt_deps=False,
            env_vars={
                "WAREHOUSE_PATH": str(settings.warehouse_path),
                "DBT_TARGET": target,
                "DBT_PLUGINS_DIR": str(project / "plugins"),
            },
        ),
        "profile_config": ProfileConfig(
            profile_name="shop_analytics",
            target_name=target,
            profiles_yml_filepath=project / "profiles.yml",
        ),
        "execution_config": ExecutionConfig(
            execution_mode=mode,
            # A subprocess per model: dbt-duckdb keeps its DuckDB handle open in-process, which
            # would block the next task in the same process (`airflow dags test`) from opening the file.
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(dbt_bin if dbt_bin.exists() else "dbt"),
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # local: one `dbt build` per model (model + its own tests in one task, one dbt start-up).
            # watcher: the producer's `dbt build` runs the tests; a test task per model reports them
            # (the watcher has no BUILD behaviour). Tests spanning several models (reconciliations)
            # get their own tasks after all their parents.
            test_behavior=TestBehavior.BUILD if mode == ExecutionMode.LOCAL else TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            exclude=["tag:duckdb_only"] if on_spark else [],
        ),
    }


def writes_warehouse(task) -> bool:
    """True for a Cosmos task that runs dbt itself (it needs the warehouse pool).

    Watcher sensors only read the producer's progress; giving them the one-slot pool would make
    them wait for the very task they watch.
    """
    return "Watcher" not in type(task).__name__ or "Producer" in type(task).__name__
