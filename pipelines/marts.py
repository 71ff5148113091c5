"""Building the marts on the configured engine, and the full rebuild an erasure needs.

`build_marts` is the one way the headless paths (`make run`'s history, benchmarks, erasures) run
the dbt project: on DuckDB (the embedded default) a `dbt build` into the warehouse; with
`MARTS_ENGINE=spark` a `dbt build` on the Spark cluster (target `spark`, all but the DuckDB-only
models) whose published marts are then copied into the DuckDB warehouse (`pipelines.spark_marts`),
so gate 2 and publish read the same tables in both modes. Airflow's `elt_marts` runs the same
sequence task by task.

`rebuild_and_publish`: a full refresh, because an incremental mart never drops rows deleted
upstream. Gate 2 audits the rebuilt marts before publish copies them, as on every other path to
the dashboards.
"""

from __future__ import annotations

from core.dbt_cli import marts_target, run_dbt
from core.settings import Settings
from pipelines.publishing import publish_for_dashboards
from quality.pipeline_gates import gate_marts


def build_marts(settings: Settings, *dbt_args: str) -> dict[str, int]:
    """`dbt build <dbt_args>` on the marts engine; in Spark mode also copy its marts into DuckDB.

    Returns the rows copied per mart (empty on DuckDB, where dbt writes the warehouse itself).
    """
    target, selection = marts_target(settings)
    run_dbt(settings, "build", *dbt_args, *selection, "--quiet", target=target, quiet=True)
    if target != "spark":
        return {}
    from pipelines.spark_marts import copy_spark_marts
    from serving.publish import dbt_manifest_path

    return copy_spark_marts(settings, dbt_manifest_path(settings))


def rebuild_and_publish(settings: Settings, run_id: str) -> str:
    """dbt build --full-refresh, gate 2, publish; returns the published run id."""
    build_marts(settings, "--full-refresh")
    gate_marts(settings, run_id)
    return publish_for_dashboards(settings, run_id).run_id
