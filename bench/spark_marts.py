"""The marts built on the Spark cluster from the same raw data as the DuckDB run (`--spark-scales`).

Run by `bench.worker spark-marts` after the full DuckDB run of a scale: a Spark cluster of the
stack's own shape (`stackctl.spark_service`: master, `SPARK_WORKERS` workers, Thrift server; its
metastore and tables inside the scale's bench folder, on free ports) is started, the lake's loaded
days are registered as Spark tables (the catch-up `make spark` runs), and `dbt build` runs on it
(target `spark`, all but the DuckDB-only models). Reported: the registration and the build's wall
time, dbt's seconds per node, the peak RSS of each Spark process (its own high-water mark), and the
served marts compared with the DuckDB run's published ones, after the hand-over to DuckDB.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import _hwm_mib
from core.ports import free_port
from core.settings import Settings

# marts whose values must agree between the engines (money to the cent, counts exactly)
COMPARED = {
    "fct_daily_revenue": "revenue_date",
    "fct_cohort_retention": "cohort_month, months_since_first_order",
    "fct_experiment_results": "experiment_key, experiment_variant",
}


def spark_peaks(settings: Settings) -> dict[str, float]:
    """Peak RSS (MiB) of each running Spark process of the stack, by service name, and of each
    executor the workers launched (its working directory is inside a worker's work folder)."""
    peaks = {
        pid_file.stem: _hwm_mib(int(pid_file.read_text().split()[0]))  # "<pid> <start time>" (stackctl.procs)
        for pid_file in sorted(settings.run_dir.glob("spark-*.pid"))
    }
    work = (settings.var_dir / "spark" / "work").resolve()  # the workers' folders (stackctl.spark_service)
    executors = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "CoarseGrainedExecutorBackend" not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            if not Path(os.readlink(proc / "cwd")).is_relative_to(work):
                continue
        except OSError:
            continue
        executors += 1
        peaks[f"executor-{executors}"] = _hwm_mib(int(proc.name))
    return peaks


def _differences(warehouse: Path, served: Path) -> dict[str, str]:
    import duckdb

    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as spark (read_only)")
        con.execute(f"attach '{served}' as duck (read_only)")
        for table, key in COMPARED.items():
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'duck' "
                    "and schema_name = 'marts' and table_name = ? and column_name != 'loaded_at' order by column_index",
                    [table],
                ).fetchall()
            ]
            keys = key.split(", ")
            checks = " or ".join(
                f"d.{c} is distinct from s.{c}"
                if c in keys
                # equal, or numbers within half a cent (or 1e-9 relative, for rates)
                else f"not (d.{c} is not distinct from s.{c} or coalesce(abs(try_cast(d.{c} as double) - "
                f"try_cast(s.{c} as double)) <= 0.005 + 1e-9 * abs(try_cast(d.{c} as double)), false))"
                for c in columns
            )
            join = " and ".join(f"d.{k} = s.{k}" for k in key.split(", "))
            differing = con.execute(
                f"select count(*) from duck.marts.{table} d full join spark.marts.{table} s on {join} where {checks}"
            ).fetchone()[0]
            out[table] = "equal" if differing == 0 else f"{differing} rows differ"
    return out


def _spark(action: str) -> dict:
    """`python -m stackctl spark <action> --json` (the stack's own command; the bench sits beside stackctl)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "stackctl", "spark", action, "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"stackctl spark {action} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_on_spark(settings: Settings) -> dict:
    """Start a cluster, register the lake, build the project on Spark, compare; always stop the cluster."""
    from bench.dbt_nodes import node_seconds
    from core.dbt_cli import marts_target, run_dbt, run_results_path
    from pipelines.spark_marts import copy_spark_marts
    from serving.publish import dbt_manifest_path

    for name in ("SPARK_MASTER_PORT", "SPARK_MASTER_UI_PORT", "SPARK_THRIFT_PORT", "SPARK_UI_PORT"):
        os.environ[name] = str(free_port())
    os.environ["SPARK_WORKER_UI_PORT"] = "0"
    cluster = _spark("up")
    result: dict = {
        "cluster": f"{cluster['master_url']} ({cluster['workers']} workers x {cluster['worker_cores']} core, "
        f"{cluster['worker_memory']})"
    }
    try:
        began = time.monotonic()
        registered = _spark("register")
        result["register_s"] = time.monotonic() - began
        result["registered_rows"] = sum(registered.values())
        spark_settings = dataclasses.replace(settings, marts_engine="spark")
        target, selection = marts_target(spark_settings)
        began = time.monotonic()
        run_dbt(settings, "build", *selection, "--quiet", target=target, quiet=True)
        result["dbt_build_s"] = time.monotonic() - began
        result["dbt_nodes"] = node_seconds(run_results_path(settings, target))
        result["spark_peak_rss_mib"] = spark_peaks(settings)
        # the hand-over into a scratch copy of the warehouse, compared with what the DuckDB run served
        scratch = dataclasses.replace(settings, warehouse_path=settings.warehouse_dir / "spark-handover.duckdb")
        began = time.monotonic()
        copy_spark_marts(scratch, dbt_manifest_path(settings))
        result["copy_s"] = time.monotonic() - began
        result["checks"] = _differences(scratch.warehouse_path, settings.serving_path)
        scratch.warehouse_path.unlink(missing_ok=True)
    finally:
        _spark("down")
    return result
