"""Spark mode: a standalone Spark cluster on 127.0.0.1 that the dbt project can build on.

`make spark` (`python -m stackctl spark up`) starts, from the Spark distribution in `.venv/spark`
(PyPI's pyspark, no download at run time) on the system's Java 17:

- `spark-master`, the standalone master: port 7077 (`SPARK_MASTER_PORT`), UI 8093
  (`SPARK_MASTER_UI_PORT`); its REST submission port is off;
- `spark-worker-N`: `SPARK_WORKERS` workers (2) of `SPARK_WORKER_CORES` cores (1) and
  `SPARK_WORKER_MEMORY` (1g) each, UIs from 8094 (`SPARK_WORKER_UI_PORT`) up;
- `spark-thrift`, the Thrift JDBC/ODBC server dbt-spark connects to, whose driver plans the SQL
  and whose executors (one per worker, `SPARK_EXECUTOR_MEMORY`) run it: port 10000
  (`SPARK_THRIFT_PORT`), UI 4040 (`SPARK_UI_PORT`).

Everything binds to 127.0.0.1 (`SPARK_LOCAL_IP` and each service's host). The Thrift server keeps
its Hive metastore (an embedded Derby database) in `var/spark/` and its managed tables in
`warehouse/spark/`; the raw layer is registered over the lake's own Parquet folders
(`warehouse.spark_lake`), nothing is copied. `make stop` stops the cluster with the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from core.settings import Settings
from stackctl import procs

MASTER, THRIFT, WORKER_PREFIX = "spark-master", "spark-thrift", "spark-worker-"
# Statements the Thrift server runs at once; more wait in its queue (dbt runs DBT_SPARK_THREADS).
STATEMENT_THREADS = 8
HOST = "127.0.0.1"
DEFAULTS = {
    "SPARK_MASTER_PORT": "7077",
    "SPARK_MASTER_UI_PORT": "8093",
    "SPARK_WORKER_UI_PORT": "8094",  # the first worker's; the others count up from it (0: any free port)
    "SPARK_WORKERS": "2",
    "SPARK_WORKER_CORES": "1",
    "SPARK_WORKER_MEMORY": "1g",
    "SPARK_EXECUTOR_MEMORY": "768m",  # per executor, within its worker's memory
    "SPARK_DRIVER_MEMORY": "1g",  # the Thrift server's driver (query planning, results)
    "SPARK_THRIFT_PORT": "10000",
    "SPARK_UI_PORT": "4040",
    # what the cluster's processes log (Spark's default, info, writes tens of thousands of lines per
    # dbt build, the metastore's audit of every call among them): warn, or info/debug to look closer
    "SPARK_LOG_LEVEL": "warn",
    # more options for every JVM of the cluster (master, workers, Thrift server, executors)
    "SPARK_JAVA_OPTIONS": "",
    # more Spark settings for the Thrift server (the session dbt's SQL runs in), `key=value` pairs
    # separated by spaces, e.g. `spark.sql.shuffle.partitions=400`; they override the stack's own
    "SPARK_CONF": "",
}


LOG_LEVELS = ("error", "warn", "info", "debug")


class SparkError(procs.ServiceError):
    """The Spark cluster could not be started or reached."""


@dataclass(frozen=True)
class SparkConfig:
    master_port: int
    master_ui_port: int
    worker_ui_port: int
    workers: int
    worker_cores: int
    worker_memory: str
    executor_memory: str
    driver_memory: str
    thrift_port: int
    ui_port: int
    log_level: str = "warn"
    java_options: str = ""
    extra_conf: tuple[tuple[str, str], ...] = ()

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"


def config() -> SparkConfig:
    """The cluster's ports and sizes, read from the environment now (defaults above)."""

    def get(name: str) -> str:
        return os.environ.get(name) or DEFAULTS[name]

    level = get("SPARK_LOG_LEVEL").lower()
    if level not in LOG_LEVELS:
        raise SparkError(f"SPARK_LOG_LEVEL={level!r}: one of {', '.join(LOG_LEVELS)}")

    return SparkConfig(
        master_port=int(get("SPARK_MASTER_PORT")),
        master_ui_port=int(get("SPARK_MASTER_UI_PORT")),
        worker_ui_port=int(get("SPARK_WORKER_UI_PORT")),
        workers=int(get("SPARK_WORKERS")),
        worker_cores=int(get("SPARK_WORKER_CORES")),
        worker_memory=get("SPARK_WORKER_MEMORY"),
        executor_memory=get("SPARK_EXECUTOR_MEMORY"),
        driver_memory=get("SPARK_DRIVER_MEMORY"),
        thrift_port=int(get("SPARK_THRIFT_PORT")),
        ui_port=int(get("SPARK_UI_PORT")),
        log_level=level,
        java_options=get("SPARK_JAVA_OPTIONS").strip(),
        extra_conf=_pairs(get("SPARK_CONF")),
    )


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """`SPARK_CONF`'s `key=value` pairs; a word without `=` or a key not under `spark.` is refused."""
    pairs = []
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not key.startswith("spark.") or not value:
            raise SparkError(f"SPARK_CONF: {word!r} is not a `spark.<setting>=<value>` pair")
        pairs.append((key, value))
    return tuple(pairs)


def spark_home(repo: Path | None = None) -> Path:
    """The Spark distribution inside `.venv/spark` (`make spark` installs it)."""
    repo = repo or Path(__file__).resolve().parents[1]
    for home in sorted((repo / ".venv" / "spark" / "lib").glob("python3*/site-packages/pyspark")):
        if (home / "bin" / "spark-class").exists():
            return home
    raise SparkError("no Spark distribution in .venv/spark: run `make spark` (it installs requirements/spark.lock.txt)")


def java_home() -> Path:
    """JAVA_HOME if set, else the installation the `java` on PATH belongs to (Spark 4 needs 17+)."""
    if os.environ.get("JAVA_HOME"):
        return Path(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    if java is None:
        raise SparkError("no `java` on PATH: Spark mode needs a Java 17 runtime (`make spark` installs OpenJDK 17)")
    return Path(java).resolve().parents[1]


def metastore_dir(settings: Settings) -> Path:
    return settings.var_dir / "spark"


def warehouse_dir(settings: Settings) -> Path:
    return settings.warehouse_path.parent / "spark"


def log_config(settings: Settings) -> Path:
    return metastore_dir(settings) / "log4j2.properties"


LOG4J2 = """\
# written by `stackctl spark up` from SPARK_LOG_LEVEL; Spark's own defaults otherwise
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
logger.metastore.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.metastore.level = fatal
logger.objectstore.name = org.apache.hadoop.hive.metastore.ObjectStore
logger.objectstore.level = error
logger.parquet.name = org.apache.parquet.CorruptStatistics
logger.parquet.level = error
"""


def java_options(settings: Settings, cfg: SparkConfig) -> str:
    """The options every JVM of the cluster runs with: its log configuration and SPARK_JAVA_OPTIONS."""
    return f"-Dlog4j2.configurationFile=file:{log_config(settings)} {cfg.java_options}".strip()


def environment(settings: Settings) -> dict[str, str]:
    """What every Spark process runs with: loopback only, logs and scratch under var/spark."""
    home = spark_home()
    scratch = metastore_dir(settings)
    return {
        **os.environ,
        "SPARK_HOME": str(home),
        "JAVA_HOME": str(java_home()),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOCAL_HOSTNAME": "localhost",
        "SPARK_LOCAL_DIRS": str(scratch / "local"),
        "SPARK_LOG_DIR": str(scratch / "logs"),
        "SPARK_PID_DIR": str(scratch),
        "PYSPARK_PYTHON": sys.executable,
    }


def thrift_conf(settings: Settings, cfg: SparkConfig) -> dict[str, str]:
    """The Thrift server's Spark settings: its own metastore and warehouse, loopback addresses,
    executors sized to the workers, and the session settings the dbt project relies on."""
    metastore = metastore_dir(settings) / "metastore_db"
    return {
        "spark.master": cfg.master_url,
        "spark.driver.memory": cfg.driver_memory,
        # Spark 4's distribution leaves out Hive's LLAP jars, yet Hive's function registry, which the
        # Thrift server initialises when a session is closed on a new handler thread, verifies a
        # class that names one of them: NoClassDefFoundError, and every later such close hangs on
        # the half-done registration. Without bytecode verification of the classpath's classes
        # (Spark's own jars; a client that can ADD JAR runs its code anyway) the class loads and
        # the registry initialises.
        "spark.driver.extraJavaOptions": "-XX:+UnlockDiagnosticVMOptions -XX:-BytecodeVerificationRemote "
        + java_options(settings, cfg),
        "spark.executor.extraJavaOptions": java_options(settings, cfg),
        "spark.executor.memory": cfg.executor_memory,
        "spark.executor.cores": str(cfg.worker_cores),
        "spark.cores.max": str(cfg.workers * cfg.worker_cores),
        "spark.driver.bindAddress": HOST,
        "spark.driver.host": HOST,
        "spark.ui.port": str(cfg.ui_port),
        "spark.ui.killEnabled": "false",
        "spark.sql.warehouse.dir": str(warehouse_dir(settings)),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.sql.catalogImplementation": "hive",
        # the lake's tables find their ds= folders when read (no partition list in the metastore
        # to drift from the lake); ingestion.spark_tables refreshes them after each registration
        "spark.sql.hive.manageFilesourcePartitions": "false",
        # insert_overwrite replaces only the partitions a run writes, not the whole table
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # the stack stores naive UTC timestamps; Spark must not shift them to the JVM's zone
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        **dict(cfg.extra_conf),
    }


def _spark_class(home: Path, *args: str) -> list[str]:
    return [str(home / "bin" / "spark-class"), *args]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def _wait(predicate, timeout: float, what: str, service: str, run_dir: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if not procs.is_running(service, run_dir):
            log = procs.log_file(service, run_dir)
            raise SparkError(f"{service} exited before {what}; end of {log}:\n{procs.tail(log)}")
        if time.monotonic() > deadline:
            log = procs.log_file(service, run_dir)
            raise SparkError(f"{what} not within {timeout:.0f} s; end of {log}:\n{procs.tail(log)}")
        time.sleep(0.5)


def alive_workers(cfg: SparkConfig) -> int:
    """Workers the master counts as alive (its UI's JSON), 0 when the master does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{cfg.master_ui_port}/json/", timeout=3) as answer:
            state = json.load(answer)
    except OSError:
        return 0
    return int(state.get("aliveworkers", 0))


def worker_names(cfg: SparkConfig) -> list[str]:
    return [f"{WORKER_PREFIX}{n}" for n in range(1, cfg.workers + 1)]


def up(settings: Settings, cfg: SparkConfig | None = None, timeout: float = 120.0) -> SparkConfig:
    """Start the master, the workers and the Thrift server (those not running yet); wait for each."""
    cfg = cfg or config()
    run_dir = settings.run_dir
    env = environment(settings)
    home = Path(env["SPARK_HOME"])
    for folder in (metastore_dir(settings) / "local", metastore_dir(settings) / "logs", warehouse_dir(settings)):
        folder.mkdir(parents=True, exist_ok=True)
    log_config(settings).write_text(LOG4J2.format(level=cfg.log_level))
    # the master's and the workers' JVMs (the Thrift server's and the executors' take theirs as --conf)
    env["SPARK_DAEMON_JAVA_OPTS"] = java_options(settings, cfg)
    if not procs.is_running(MASTER, run_dir):
        procs.ensure_port_free(cfg.master_port, "spark master", "SPARK_MASTER_PORT")
        procs.ensure_port_free(cfg.master_ui_port, "spark master UI", "SPARK_MASTER_UI_PORT")
        procs.start(
            MASTER,
            _spark_class(
                home,
                "org.apache.spark.deploy.master.Master",
                "--host",
                HOST,
                "--port",
                str(cfg.master_port),
                "--webui-port",
                str(cfg.master_ui_port),
            ),
            # no unauthenticated REST job submission, no kill links in the UI
            env={**env, "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false -Dspark.ui.killEnabled=false"},
            cwd=metastore_dir(settings),
            run_dir=run_dir,
        )
        _wait(lambda: _listening(cfg.master_port), timeout, "the master listened", MASTER, run_dir)
    for index, name in enumerate(worker_names(cfg)):
        if procs.is_running(name, run_dir):
            continue
        work = metastore_dir(settings) / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        procs.start(
            name,
            _spark_class(
                home,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                HOST,
                "--cores",
                str(cfg.worker_cores),
                "--memory",
                cfg.worker_memory,
                "--webui-port",
                str(cfg.worker_ui_port + index if cfg.worker_ui_port else 0),
                "--work-dir",
                str(work),
                cfg.master_url,
            ),
            env=env,
            cwd=work,
            run_dir=run_dir,
        )
    _wait(lambda: alive_workers(cfg) >= cfg.workers, timeout, f"{cfg.workers} workers registered", MASTER, run_dir)
    if not procs.is_running(THRIFT, run_dir):
        procs.ensure_port_free(cfg.thrift_port, "spark thrift server", "SPARK_THRIFT_PORT")
        command = _spark_class(
            home,
            "org.apache.spark.deploy.SparkSubmit",
            "--class",
            "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
            "--name",
            "stack-thrift-server",
        )
        for key, value in thrift_conf(settings, cfg).items():
            command += ["--conf", f"{key}={value}"]
        command += [
            "spark-internal",
            "--hiveconf",
            f"hive.server2.thrift.port={cfg.thrift_port}",
            "--hiveconf",
            f"hive.server2.thrift.bind.host={HOST}",
            # no login, said out loud: the server is reachable from this host only (README, Spark mode)
            "--hiveconf",
            "hive.server2.authentication=NONE",
            # Each statement runs on a thread of Hive's pool, and each thread builds its own metastore
            # store (a fresh Hive configuration parsed from XML and a DataNucleus store: 0.1-0.3 s of
            # CPU). By default the pool starts a new thread for every statement until it holds 100
            # and lets each go after 10 s idle, so every dbt statement paid that set-up (13 % of the
            # Thrift server's CPU in a build). A few threads kept for an hour are built once.
            "--hiveconf",
            f"hive.server2.async.exec.threads={STATEMENT_THREADS}",
            "--hiveconf",
            "hive.server2.async.exec.keepalive.time=3600",
        ]
        procs.start(THRIFT, command, env=env, cwd=metastore_dir(settings), run_dir=run_dir)
        _wait(lambda: _listening(cfg.thrift_port), timeout, "the Thrift server listened", THRIFT, run_dir)
    return cfg


def down(settings: Settings, cfg: SparkConfig | None = None) -> list[str]:
    """Stop the Thrift server, the workers and the master; the names of those that were running."""
    cfg = cfg or config()
    stopped = []
    running_workers = sorted(p.stem for p in settings.run_dir.glob(f"{WORKER_PREFIX}*.pid"))
    for name in [THRIFT, *dict.fromkeys([*worker_names(cfg), *running_workers]), MASTER]:
        if procs.stop(name, settings.run_dir):
            stopped.append(name)
    return stopped


def status(settings: Settings, cfg: SparkConfig | None = None) -> dict[str, bool]:
    cfg = cfg or config()
    return {name: procs.is_running(name, settings.run_dir) for name in [MASTER, *worker_names(cfg), THRIFT]}


ACTIONS = {
    "up": "start the master, the workers and the Thrift server (on 127.0.0.1)",
    "down": "stop the Thrift server, the workers and the master",
    "status": "which Spark services run, and the workers the master counts",
    "register": "register every day DuckDB's raw layer holds as the Spark raw tables' visible days",
}


def main(argv: list[str] | None = None, prog: str = "python -m stackctl spark") -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True, title="actions", metavar="<action>")
    for action, text in ACTIONS.items():
        sub.add_parser(action, help=text, description=text).add_argument(
            "--json", action="store_true", help="print the outcome as one JSON object (for scripts)"
        )
    args = parser.parse_args(argv)

    from core.command import prepare_command
    from core.settings import get_settings

    prepare_command()
    settings = get_settings()
    cfg = config()
    lines: list[str]
    if args.action == "up":
        up(settings, cfg)
        outcome: dict = {**asdict(cfg), "master_url": cfg.master_url}
        lines = [
            f"Spark    {cfg.master_url} ({cfg.workers} workers x {cfg.worker_cores} core, {cfg.worker_memory}), "
            f"UI http://{HOST}:{cfg.master_ui_port}; Thrift server {HOST}:{cfg.thrift_port} "
            f"(dbt target `spark`), its UI http://{HOST}:{cfg.ui_port}"
        ]
    elif args.action == "down":
        stopped = down(settings, cfg)
        outcome = {"stopped": stopped}
        lines = ["stopped: " + (", ".join(stopped) if stopped else "nothing was running")]
    elif args.action == "status":
        services, alive = status(settings, cfg), alive_workers(cfg)
        outcome = {**services, "workers alive": alive}
        lines = [f"{name:24} {'running' if running else 'stopped'}" for name, running in services.items()]
        lines.append(f"{'workers alive':24} {alive}")
    else:  # register
        from ingestion.spark_tables import loaded_manifests, register_partitions

        registered = register_partitions(settings, loaded_manifests(settings), "register")
        outcome = {f"raw.{table}": rows for table, rows in registered.items()}
        lines = [f"{table:34} {rows:>12,} rows" for table, rows in outcome.items()]
    print(json.dumps(outcome) if args.json else "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
