"""A throwaway cluster-mode stack for tests and the backfill measurement: own databases, queue, ports.

`ClusterStack` points the stack at a temporary data folder, its own PostgreSQL metadata database,
a Redis database and a Celery queue of its own (other people's workers on the same Redis never
take its tasks), starts Airflow in cluster mode through `stackctl.airflow_service` (api-server,
scheduler, dag-processor, triggerer and N Celery workers), and on exit stops every process it
started and drops its database. Used by `test_cluster_mode.py` and `backfill_speedup.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

PG_URL = os.environ.get("CLUSTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CLUSTER_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_db(use: int) -> int:
    """A Redis database number (3-15) of this test process for `use` (0: a Celery broker, 1: Superset's cache).

    Databases 0-2 are the defaults of a real stack in cluster mode (Airflow's queue, Superset's
    caches, Superset's queue). Each pytest-xdist worker has two databases of its own (gw0: 3-4,
    gw1: 5-6, ...; six workers before they repeat), so two workers never share one: the Superset
    cache test counts and clears every cached result in its database. Within a worker the tests
    run one after another.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return 3 + (2 * index + use) % 12


def unavailable_reason() -> str | None:
    """Why cluster mode cannot run here (PostgreSQL or Redis not answering), or None."""
    from stackctl import cluster

    try:
        cluster.check_postgres(PG_URL, timeout=2)
        cluster.check_redis(f"{REDIS_URL}/0", timeout=2)
    except cluster.ClusterError as exc:
        return f"cluster mode needs PostgreSQL and Redis on 127.0.0.1: {exc}"
    return None


def simulate_source(app_db: Path, first: dt.date, last: dt.date) -> None:
    """The shop's app DB for [first, last], written once and copied to every stack compared."""
    from ingestion.simulator.run import simulate

    app_db.parent.mkdir(parents=True, exist_ok=True)
    simulate(f"sqlite:///{app_db}", first, last, progress=False)


def use_data_dir(root: Path, app_db: Path) -> None:
    """Point the stack's settings at `root`, with its own copy of the app DB."""
    (root / "appdb").mkdir(parents=True, exist_ok=True)
    shutil.copy(app_db, root / "appdb" / "shop.sqlite")
    os.environ.update({"STACK_DATA_DIR": str(root), "STACK_VAR_DIR": str(root / "var")})
    for name in ("APP_DB_URL", "LAKE_DIR", "WAREHOUSE_DIR", "WAREHOUSE_PATH", "SERVING_PATH", "AIRFLOW_HOME"):
        os.environ.pop(name, None)


def marts_hashes(serving_path: Path) -> dict[str, str]:
    """sha256 of every table in schema `marts` of a serving file, rows in a canonical order.

    Without `loaded_at`: the incremental marts keep the load time of the rows behind each row (their
    watermark), which differs between two runs that loaded the same data at different times."""
    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{serving_path}' as s (read_only)")
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 's' and schema_name = 'marts' order by 1"
            ).fetchall()
        ]
        for table in tables:
            columns = [c[0] for c in con.execute(f"describe s.marts.{table}").fetchall()]
            selected = "* exclude (loaded_at)" if "loaded_at" in columns else "*"
            rows = con.execute(f"select {selected} from s.marts.{table} order by all").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def raw_hashes(warehouse_path: Path) -> dict[str, str]:
    """sha256 of every table in schema `raw`, without the columns naming the run that loaded it."""
    out = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse_path}' as w (read_only)")
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "select table_name, column_name from duckdb_columns() where database_name = 'w' "
            "and schema_name = 'raw' order by table_name, column_index"
        ).fetchall():
            if column not in {"_run_id", "_loaded_at"}:
                columns.setdefault(table, []).append(f'"{column}"')
        for table, names in columns.items():
            rows = con.execute(f"select {', '.join(names)} from w.raw.{table} order by all").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def build_marts_headless(settings, run_id: str) -> None:
    """dbt build, gate 2 and publish: what `elt_marts` runs, in one process (seconds, not minutes)."""
    from core.dbt_cli import run_dbt
    from pipelines.publishing import publish_for_dashboards
    from quality.pipeline_gates import gate_marts

    run_dbt(settings, "build", "--quiet", quiet=True)
    gate_marts(settings, run_id)
    publish_for_dashboards(settings, run_id)


@dataclass
class ClusterStack:
    """Airflow in cluster mode on a temporary folder; `with` starts it, leaving stops and cleans up."""

    root: Path
    workers: int = 2
    concurrency: int = 1
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metadata_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/airflow_ct_{self.tag}"
        # This worker's broker database (see redis_db); the queue name is unique anyway.
        self.broker_url = f"{REDIS_URL}/{redis_db(0)}"
        self.queue = f"cluster_test_{self.tag}"
        self.api = None
        self.settings = None

    def env(self) -> dict[str, str]:
        from stackctl import procs

        return {
            "STACK_MODE": "cluster",
            "AIRFLOW_METADATA_URL": self.metadata_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_WORKERS": str(self.workers),
            "CELERY_WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW_PORT": str(procs.free_port()),
            "AIRFLOW_ADMIN_USER": "cluster_admin",
            "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
            "AIRFLOW_API_SECRET": secrets.token_urlsafe(24),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            **self.extra_env,
        }

    def __enter__(self) -> ClusterStack:
        from core.settings import get_settings
        from stackctl import airflow_service, cluster

        # Another test module may have pointed Airflow at SQLite in this process (tests/dags).
        for name in [n for n in os.environ if n.startswith(("AIRFLOW__DATABASE__", "AIRFLOW__CELERY__"))]:
            os.environ.pop(name)
        os.environ.update(self.env())
        cluster.use_mode("cluster")
        self.settings = get_settings()
        try:
            airflow_service.init(self.settings, log=lambda msg: None)
            url = airflow_service.start(self.settings, log=lambda msg: None)
            self.api = airflow_service.AirflowApi(url)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        from stackctl import airflow_service, cluster

        if self.settings is not None:
            airflow_service.stop(self.settings)
        try:
            cluster.drop_database(self.metadata_url)
        finally:
            _drop_queue_keys(self.broker_url, self.queue)

    def worker_logs(self) -> str:
        return "".join(
            (self.settings.run_dir / f"{name}.log").read_text(errors="replace")
            for name in (f"airflow-worker-{n}" for n in range(1, self.workers + 1))
        )

    def backfill(self, dag_id: str, first: dt.date, last: dt.date, max_active_runs: int = 10) -> dict:
        """Create a backfill through the REST API (what the UI's Backfills tab does)."""
        self.api.wait_for_dag(dag_id)
        out = self.api.post(
            "/backfills",
            {
                "dag_id": dag_id,
                "from_date": f"{first}T00:00:00Z",
                "to_date": f"{last}T00:00:00Z",
                "max_active_runs": max_active_runs,
                # Required with depends_on_past (shop_daily.land): redo failed days, add missing ones.
                "reprocess_behavior": "failed",
            },
        )
        self.api.patch(f"/dags/{dag_id}", {"is_paused": False})  # paused DAGs do not run backfills
        return out

    def wait_for_runs(self, dag_id: str, count: int, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.api.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]
            if len(runs) >= count and all(r["state"] in {"success", "failed"} for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {r["logical_date"][:10]: r["state"] for r in runs}
                raise TimeoutError(f"{dag_id}: runs still going after {timeout:.0f}s: {states}")
            time.sleep(2)

    def task_instances(self, dag_id: str) -> list[dict]:
        return self.api.get(f"/dags/{dag_id}/dagRuns/~/taskInstances", limit=1000)["task_instances"]


def _drop_queue_keys(broker_url: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=3)
    keys = list(client.scan_iter(match=f"*{queue}*"))
    if keys:
        client.delete(*keys)


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
