"""A partitioned incremental model on Spark rewrites only the partitions a run touches, and is
still exactly what DuckDB's delete+insert would leave (dbt_project/macros/portable/spark_incremental.sql).

A one-model dbt project (the project's own Spark macros, copied) builds `moving`, partitioned by
day and keyed by `k`, from a source table the test appends batches to; each run takes the newest
batch. The runs cover the three paths: a key recomputed in its own day and a key that moved to
another day (only those two days' files are rewritten; the old day loses the moved key and keeps
its other one), and a key that moved out of a day that is then empty (the table is rewritten
whole, and the empty day is gone).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbt.fixture_warehouse import DBT_PROJECT

pytestmark = pytest.mark.slow  # three dbt runs on the Spark cluster

SCHEMA = "partition_check"
D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)
MODEL = """
{{ config(materialized='incremental', unique_key='k', incremental_strategy='delete+insert', partition_by='d') }}
select k, v, d from {{ source('check', 'batches') }}
where batch = (select max(batch) from {{ source('check', 'batches') }})
"""


@pytest.fixture(scope="module")
def project(spark_cluster, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("spark_partitions")
    (root / "models").mkdir()
    (root / "macros").mkdir()
    (root / "macros" / "spark_incremental.sql").write_text(
        (DBT_PROJECT / "macros" / "portable" / "spark_incremental.sql").read_text()
    )
    (root / "models" / "moving.sql").write_text(MODEL)
    (root / "models" / "sources.yml").write_text(
        f"version: 2\nsources:\n  - name: check\n    schema: {SCHEMA}\n    tables:\n      - name: batches\n"
    )
    (root / "dbt_project.yml").write_text(
        "name: partition_check\nversion: '1.0'\nprofile: partition_check\n"
        "model-paths: [models]\nmacro-paths: [macros]\n"
    )
    (root / "profiles.yml").write_text(
        "partition_check:\n  target: spark\n  outputs:\n    spark:\n      type: spark\n      method: thrift\n"
        f"      host: 127.0.0.1\n      port: {spark_cluster.config.thrift_port}\n      user: stack\n"
        f"      schema: {SCHEMA}\n      threads: 1\n"
    )
    spark_cluster.rows(f"drop database if exists {SCHEMA} cascade")
    spark_cluster.rows(f"create database {SCHEMA}")
    spark_cluster.rows(f"create table {SCHEMA}.batches (batch int, k int, v string, d date) using parquet")
    yield root
    spark_cluster.rows(f"drop database if exists {SCHEMA} cascade")


def _run(project: Path, spark_cluster, batch: int, rows: list[tuple[int, str, dt.date]]) -> None:
    values = ", ".join(f"({batch}, {k}, '{v}', date'{d}')" for k, v, d in rows)
    spark_cluster.rows(f"insert into {SCHEMA}.batches values {values}")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1"}
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), "run", "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**env, "DBT_TARGET_PATH": str(project / "target"), "DBT_LOG_PATH": str(project / "logs")},
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def _table(spark_cluster) -> dict[int, tuple[str, str]]:
    rows = spark_cluster.rows(f"select k, v, d from {SCHEMA}.moving")
    assert len(rows) == len({k for k, _, _ in rows}), rows  # one row per key
    return {k: (v, str(d)) for k, v, d in rows}


def _files(spark_cluster) -> dict[int, str]:
    return dict(spark_cluster.rows(f"select k, input_file_name() from {SCHEMA}.moving"))


def _leftovers(spark_cluster) -> set[str]:
    return {row[1] for row in spark_cluster.rows(f"show tables in {SCHEMA}")} - {"batches", "moving"}


def test_runs_rewrite_the_touched_days_and_leave_delete_insert_s_table(project, spark_cluster):
    _run(project, spark_cluster, 1, [(1, "a", D1), (2, "b", D1), (3, "c", D2), (4, "d", D3)])
    assert _table(spark_cluster) == {1: ("a", str(D1)), 2: ("b", str(D1)), 3: ("c", str(D2)), 4: ("d", str(D3))}

    # a key recomputed in its own day, and a key moved to that day from another: those two days
    # are written again (the old day loses the moved key and keeps its other one); the third is not
    before = _files(spark_cluster)
    _run(project, spark_cluster, 2, [(3, "c2", D2), (1, "a2", D2)])
    assert _table(spark_cluster) == {1: ("a2", str(D2)), 2: ("b", str(D1)), 3: ("c2", str(D2)), 4: ("d", str(D3))}
    after = _files(spark_cluster)
    assert [after[k] == before[k] for k in (2, 3, 4)] == [False, False, True], (before, after)
    assert _leftovers(spark_cluster) == set()

    # the last key of a day moves away: the day would be empty, so the table is rewritten whole
    _run(project, spark_cluster, 3, [(2, "b3", D3)])
    assert _table(spark_cluster) == {1: ("a2", str(D2)), 2: ("b3", str(D3)), 3: ("c2", str(D2)), 4: ("d", str(D3))}
    assert not [path for path in _files(spark_cluster).values() if f"d={D1}" in path]
    assert _leftovers(spark_cluster) == set()
