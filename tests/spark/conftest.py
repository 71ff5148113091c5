"""One real Spark cluster for the Spark-mode tests: a standalone master, two workers and the Thrift
server on 127.0.0.1 (free ports, its own metastore and scratch folders), stopped after the session;
and one shop built on it (`spark_shop`), which the equality and the Airflow tests share.

Skips, saying why, where Spark mode cannot run: no Java runtime, or no `.venv/spark` (`make test`
installs both through `make spark-env`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings, get_settings
from stackctl import procs, spark_service
from tests.conftest import stack_environment


def spark_missing() -> str | None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime: `make spark-env` installs OpenJDK 17 (needs root and apt)"
    try:
        spark_service.spark_home()
    except spark_service.SparkError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class SparkCluster:
    settings: Settings  # the cluster's own run state (pid files, logs, metastore)
    config: spark_service.SparkConfig
    env: dict[str, str]  # what a stack process needs to reach it (SPARK_* variables)

    def rows(self, sql: str, pii_key: str | None = None) -> list[tuple]:
        """Run one statement on the Thrift server; `pii_key` as the dbt profile passes it."""
        from pyhive import hive

        configuration = {"set:hiveconf:shop.pii_hash_key": pii_key} if pii_key else None
        connection = hive.connect(
            host="127.0.0.1", port=self.config.thrift_port, username="stack", configuration=configuration
        )
        with closing(connection), closing(connection.cursor()) as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def reset(self) -> None:
        """Drop every database but `default` (tables, views and their files): a module that builds the
        project starts from an empty cluster, not from the incremental tables of another module's shop."""
        for (database,) in self.rows("show databases"):
            if database != "default":
                self.rows(f"drop database `{database}` cascade")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    root: Path = tmp_path_factory.mktemp("spark_cluster")
    env = {
        "SPARK_MASTER_PORT": str(procs.free_port()),
        "SPARK_MASTER_UI_PORT": str(procs.free_port()),
        "SPARK_WORKER_UI_PORT": "0",
        "SPARK_THRIFT_PORT": str(procs.free_port()),
        "SPARK_UI_PORT": str(procs.free_port()),
        # The tests' data are tiny and their JVMs live minutes: most of the cluster's CPU went to the
        # JIT's optimising compiler (10 min of compile time in one run of this folder) and the
        # parallel collector. C1 alone and the serial collector give the same results for less CPU
        # (README, Spark mode: the same options suit any small cluster of short-lived processes).
        # C1 alone shrinks the code cache to 48 MB, which Spark's generated classes outgrow: the
        # JVM then flushes and recompiles code all the time (the Thrift server's CPU 338 -> 187 s
        # in one run of this folder with the default 240 MB back).
        "SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseSerialGC",
        # A few rows per table: Spark's 200 shuffle partitions meant 200 map outputs per map task
        # (Thrift server 187 -> 172 CPU-s, executors 120 -> 102, the folder 346 -> 286 s with 4).
        # Interpreted plans instead of whole-stage code generation gained nothing.
        "SPARK_CONF": "spark.sql.shuffle.partitions=4",
    }
    with stack_environment(root, "spark-cluster-key", **env):
        settings = get_settings()
        cfg = spark_service.config()
        try:
            spark_service.up(settings, cfg)
        except BaseException:
            spark_service.down(settings, cfg)  # what started before the failure
            raise
        try:
            yield SparkCluster(settings, cfg, env)
        finally:
            stopped = spark_service.down(settings, cfg)
            assert set(stopped) == set(spark_service.status(settings, cfg)), stopped


@pytest.fixture(scope="session")
def spark_shop(spark_cluster: SparkCluster, tmp_path_factory: pytest.TempPathFactory):
    """The fixture shop built on the cluster by dbt, then by elt_marts under Airflow (see spark_shop.py).

    Session-scoped and built outside the tests' environment (nothing of its stack is left in
    os.environ): the equality tests and the Airflow tests read the same build.
    """
    from tests.spark.spark_shop import build_spark_shop

    return build_spark_shop(spark_cluster, tmp_path_factory.mktemp("spark_shop"))
