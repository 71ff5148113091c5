"""Spark mode: a real standalone Spark cluster on 127.0.0.1 (master, two workers, Thrift server)
reads the lake's audited days as the same raw tables DuckDB loaded, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from ingestion.app_db.batch import land_day, load_days
from ingestion.lake import PartitionManifest
from ingestion.simulator.run import simulate
from stackctl import procs, spark_service
from tests.conftest import stack_environment
from tests.spark.conftest import SparkCluster

DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lake_stack(spark_cluster: SparkCluster, tmp_path_factory: pytest.TempPathFactory):
    """A stack folder with three simulated days landed and loaded into DuckDB, whose Spark is the cluster."""
    root = tmp_path_factory.mktemp("spark_lake")
    with stack_environment(root, "spark-lake-key", **spark_cluster.env):
        settings = get_settings()
        simulate(settings.app_db_url, DAYS[0], DAYS[-1], scale=0.1, progress=False)
        for day in DAYS:
            land_day(settings, day, "history")
        load_days(settings, DAYS, "history")
        yield settings


def _comparable(rows: list[tuple]) -> list[tuple]:
    """Spark's Thrift answers dates as text and decimals as floats: one form for both engines."""

    def value(v):
        if isinstance(v, dt.datetime):
            return v.isoformat(sep=" ")
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, Decimal):
            return float(v)
        return v

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def _duckdb_rows(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_cluster_runs_two_workers_and_listens_on_loopback_only(spark_cluster):
    settings, cfg = spark_cluster.settings, spark_cluster.config
    assert spark_service.alive_workers(cfg) == 2
    groups = {procs.read_pid(name, settings.run_dir) for name in spark_service.status(settings, cfg)}
    assert None not in groups, "a Spark service is not running"
    members = {int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _process_group(stat) in groups}
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = [
        line.split()[3]
        for line in listening.splitlines()
        if any(int(pid) in members for pid in re.findall(r"pid=(\d+)", line))
    ]
    assert ours, "the cluster listens on no port"
    assert all(re.match(r"^(\[::ffff:)?127\.0\.0\.1\]?:\d+$", address) for address in ours), ours
    assert any(address.endswith(f":{cfg.thrift_port}") for address in ours), ours
    # the master's REST job submission (no authentication) is off
    assert not any(address.endswith(":6066") for address in ours), ours


def _process_group(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def test_registered_days_are_the_raw_tables_duckdb_loaded(spark_cluster, lake_stack):
    """`stackctl spark register` (the catch-up `make spark` runs) makes every loaded day Spark's."""
    from ingestion.spark_tables import loaded_manifests

    settings = lake_stack
    loaded = loaded_manifests(settings)
    assert set(loaded) == {"customers", "products", "orders", "order_items", "returns", "web_events"}
    assert all(len(manifests) == len(DAYS) for manifests in loaded.values())
    command = [sys.executable, "-m", "stackctl", "spark", "register", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    registered = {name.removeprefix("raw."): rows for name, rows in json.loads(done.stdout).items()}
    assert set(registered) == set(loaded)
    for table, manifests in loaded.items():
        assert registered[table] == sum(m.row_count for m in manifests)
        columns = [
            name
            for (name,) in _duckdb_rows(
                settings,
                f"select column_name from information_schema.columns where table_schema = 'raw' and table_name = "
                f"'{table}' and column_name not in ('_loaded_at', '_run_id') order by ordinal_position",
            )
        ]
        select = ", ".join(columns)
        in_spark = _comparable(spark_cluster.rows(f"select {select} from raw.{table}"))
        in_duckdb = _comparable(_duckdb_rows(settings, f"select {select} from raw.{table}"))
        assert len(in_spark) == registered[table]
        assert in_spark == in_duckdb, table
        # on Spark, a row's run is the one that registered its day (as on DuckDB the one that loaded it)
        runs = spark_cluster.rows(f"select distinct _run_id from raw.{table}")
        assert runs == ([("register",)] if registered[table] else []), table


def test_a_day_relanded_is_hidden_until_it_is_registered_again(spark_cluster, lake_stack):
    """Re-landing replaces the day's file in the lake (here under the same run id, as a retried
    task does): Spark shows none of it until that file is registered after its audit."""
    from ingestion.spark_tables import register_partitions

    settings, spark = lake_stack, spark_cluster
    day = str(DAYS[1])
    before = spark.rows(f"select count(*) from raw.orders where _ds = date '{day}'")[0][0]
    assert before > 0
    manifest = PartitionManifest(**land_day(settings, DAYS[1], "history", ["orders"])["orders"])

    hidden = spark.rows(f"select count(*) from raw.orders where _ds = date '{day}'")
    assert hidden == [(0,)]
    others = spark.rows(f"select count(*) from raw.orders where _ds != date '{day}'")[0][0]
    assert others > 0

    register_partitions(settings, {"orders": [manifest]}, "rerun")
    shown = spark.rows(f"select _run_id, count(*) from raw.orders where _ds = date '{day}' group by 1")
    assert shown == [("rerun", manifest.row_count)]


def test_in_spark_mode_a_load_registers_its_days(spark_cluster, lake_stack, monkeypatch):
    """MARTS_ENGINE=spark: the load that copies a day into DuckDB makes it Spark's visible day too."""
    monkeypatch.setenv("MARTS_ENGINE", "spark")
    settings = get_settings()
    day = str(DAYS[2])
    land_day(settings, DAYS[2], "reland", ["orders"])
    assert spark_cluster.rows(f"select count(*) from raw.orders where _ds = date '{day}'") == [(0,)]
    load_days(settings, [DAYS[2]], "spark-mode-load", ["orders"])
    shown = spark_cluster.rows(f"select _run_id, count(*) from raw.orders where _ds = date '{day}' group by 1")
    loaded = _duckdb_rows(settings, f"select _run_id, count(*) from raw.orders where _ds = date '{day}' group by 1")
    assert shown == loaded == [("spark-mode-load", loaded[0][1])]
