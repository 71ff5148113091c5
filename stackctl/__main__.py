"""`python -m stackctl`: the stack's one command line, what the Makefile's targets run.

    python -m stackctl <command> ...          the stack itself: env, run, up, stop, status, pipeline, dbt ...
    python -m stackctl <area> <command> ...   an area's own commands: quality, partner-files, governance,
                                              ml, superset, bench, dbt-portable
    python -m stackctl airflow <args> ...     Airflow's own CLI with the environment the stack gives Airflow

`--help` works at every level. An area's module (`quality/__main__.py` ...) is imported only when
that area runs, so `--help` and the stack commands stay fast; the older `python -m quality` style
entry points still work and run the same `main()`.

Every command turns the stack's known failure modes (missing .env, unreachable app DB, a port in
use, a failing gate, a bad argument) into one line, `error: ...`, exit status 2, instead of a
stack trace or a usage screen.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import inspect
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from core.cli_types import iso_date, positive_float, positive_int
from core.orchestration import DAG_IDS, ELT_MARTS, MARKETING_API_DAILY, SHOP_DAILY
from core.settings import SettingError, get_settings


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def cmd_env(args: argparse.Namespace) -> None:
    from core.envfile import ensure_env_file, env_file_path

    added = ensure_env_file()
    if added:
        print(f"generated {', '.join(added)} into {env_file_path()} (untracked; logins are printed by `make run`)")
    else:
        print(f"{env_file_path()} is complete")


def _simulation_window(url: str, days: int, end: dt.date) -> tuple[dt.date, int, float]:
    """The simulator's start/seed/scale: those already used by the app DB, else the defaults."""
    from ingestion.simulator.run import stored_settings

    stored = stored_settings(url)
    if stored:
        return stored["start_date"], stored["seed"], stored["scale"]
    seed = int(os.environ.get("SIM_SEED", "42"))
    scale = float(os.environ.get("SIM_SCALE", "1"))
    return end - dt.timedelta(days=days - 1), seed, scale


def _drift_from(url: str) -> dt.date | None:
    """SIM_DRIFT_FROM (a date) if set, else the drift the app DB was simulated with (none for a new one)."""
    from ingestion.simulator.run import stored_settings

    value = os.environ.get("SIM_DRIFT_FROM", "").strip()
    if not value:
        stored = stored_settings(url)
        return stored["drift_from"] if stored else None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"SIM_DRIFT_FROM={value!r} is not a date (YYYY-MM-DD)") from None


def cmd_simulate(args: argparse.Namespace) -> None:
    from ingestion.simulator.run import simulate

    settings = get_settings()
    end = args.end or _yesterday()
    start, seed, scale = _simulation_window(settings.app_db_url, args.days, end)
    totals = simulate(
        settings.app_db_url, start, end, seed=seed, scale=scale, drift_from=_drift_from(settings.app_db_url)
    )
    print(
        f"app DB {settings.app_db_url}: shop simulated {start}..{end}; written now: {totals or 'nothing (up to date)'}"
    )


def cmd_pipeline(args: argparse.Namespace) -> None:
    from pipelines.runner import run_range

    settings = get_settings()
    start, end = args.start, args.end
    run_id = args.run_id or f"headless__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    timings = run_range(settings, start, end, run_id)
    print("pipeline done: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def cmd_dbt_parse(args: argparse.Namespace) -> None:
    from core.dbt_cli import run_dbt

    run_dbt(get_settings(), "parse", "--quiet", quiet=True)


def cmd_dbt(args: argparse.Namespace) -> None:
    from core.dbt_cli import run_dbt

    run_dbt(get_settings(), *args.dbt_args, target=os.environ.get("DBT_TARGET", "prod"))


def _history_marker():
    return get_settings().var_dir / "history_published_through"


def cmd_run(args: argparse.Namespace) -> None:
    """Everything `make run` does after the environments exist."""
    from core.dbt_cli import run_dbt
    from pipelines.runner import run_range
    from stackctl import airflow_service, fake_api_service, superset_service

    settings = get_settings()
    began = time.monotonic()
    step = _stepper()

    # History up to the day before yesterday runs headless (minutes -> seconds); yesterday runs
    # through Airflow itself, so the UI shows a real green run. Each day is simulated before it
    # is extracted, as in production, where a day's extract runs right after the day ends.
    yesterday = _yesterday()
    history_end = yesterday - dt.timedelta(days=1)
    step(f"demo data: simulating the shop's operational database up to {history_end}")
    cmd_simulate(argparse.Namespace(days=args.days - 1, end=history_end))
    start, _, _ = _simulation_window(settings.app_db_url, args.days, yesterday)

    step("dbt: parsing the project (the manifest Cosmos renders in Airflow)")
    run_dbt(settings, "parse", "--quiet", quiet=True)

    marker = _history_marker()
    done_through = dt.date.fromisoformat(marker.read_text().strip()) if marker.exists() else None
    if done_through is None or done_through < history_end:
        first = start if done_through is None else done_through + dt.timedelta(days=1)
        step("marketing API: starting the local stand-in of the vendor API")
        fake_api_service.up(settings, log=_indent)
        step(f"pipeline: history {first}..{history_end} headless (same code as the DAGs)")
        run_range(settings, first, history_end, f"history__{history_end}", sources=("shop", "marketing_api"))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(history_end))
    else:
        step(f"pipeline: history already published through {done_through}")
    step(f"demo data: simulating {yesterday}, the day Airflow will process, and partner files")
    cmd_simulate(argparse.Namespace(days=args.days, end=yesterday))
    from ingestion.partner_files.process import inbox_dir
    from ingestion.partner_files.samples import write_demo

    write_demo(inbox_dir(settings), yesterday)

    step("airflow: metadata, then api-server, scheduler, dag-processor, triggerer")
    airflow_service.init(settings, log=_indent)
    airflow_url = airflow_service.start(settings, log=_indent)
    api = airflow_service.AirflowApi(airflow_url)
    fake_api_service.up(settings, log=_indent)
    for dag_id in DAG_IDS:
        api.wait_for_dag(dag_id)
        api.patch(f"/dags/{dag_id}", {"is_paused": False})

    step("superset: metadata, server, dashboards from superset/assets")
    superset_url = superset_service.up(settings, log=_indent)

    step(f"airflow: waiting for the scheduled runs of {yesterday}, then the marts they trigger")
    _wait_for_run(api, SHOP_DAILY, yesterday, timeout=args.run_timeout)
    _wait_for_run(api, MARKETING_API_DAILY, yesterday, timeout=args.run_timeout)
    _wait_for_run(api, ELT_MARTS, None, timeout=args.run_timeout)
    _wait_for_inbox(settings, timeout=args.run_timeout)

    print(
        f"""
The stack is up ({time.monotonic() - began:.0f}s).
  Airflow   {airflow_url}   user {os.environ["AIRFLOW_ADMIN_USER"]} / password {os.environ["AIRFLOW_ADMIN_PASSWORD"]}
  Superset  {superset_url}   user {os.environ["SUPERSET_ADMIN_USER"]} / password {os.environ["SUPERSET_ADMIN_PASSWORD"]}
            executive: {os.environ["SUPERSET_EXECUTIVE_USER"]} / {os.environ["SUPERSET_EXECUTIVE_PASSWORD"]}
  Logins are in .env. Stop everything with `make stop`."""
    )


def _wait_for_run(api, dag_id: str, ds: dt.date | None, timeout: float) -> None:
    """Wait for the run of `dag_id` for day `ds` (or, with None, its newest run) to finish."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        runs = api.get(f"/dags/{dag_id}/dagRuns", order_by="-run_after", limit=5)["dag_runs"]
        run = next((r for r in runs if ds is None or (r.get("logical_date") or "").startswith(str(ds))), None)
        if run:
            tis = api.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances", limit=100)["task_instances"]
            done = sum(ti["state"] == "success" for ti in tis)
            line = f"    run {run['dag_run_id']}: {run['state']} ({done}/{len(tis)} tasks succeeded)"
            if line != last:
                print(line, flush=True)
                last = line
            if run["state"] == "success":
                return
            if run["state"] == "failed":
                failed = [ti["task_id"] for ti in tis if ti["state"] == "failed"]
                raise SystemExit(
                    f"{dag_id} for {ds or 'the newest run'} failed in {failed}: see the task log in the Airflow UI"
                )
        time.sleep(3)
    raise SystemExit(
        f"shop_daily for {ds} did not finish in {timeout:.0f}s; it keeps running: watch it in the Airflow UI"
    )


def _wait_for_inbox(settings, timeout: float) -> None:
    """partner_files runs continuously (a sensor waits for files): wait until the inbox is drained."""
    from ingestion.partner_files.process import inbox_dir

    deadline = time.monotonic() + timeout
    while any(p.is_file() and not p.name.startswith(".") for p in inbox_dir(settings).rglob("*")):
        if time.monotonic() > deadline:
            raise SystemExit("partner files are still in lake/inbox/: see the partner_files DAG in the Airflow UI")
        time.sleep(3)
    print("    partner files processed (`make quarantine` shows what was held and why)", flush=True)


def cmd_up(args: argparse.Namespace) -> None:
    from stackctl import airflow_service, fake_api_service, superset_service

    settings = get_settings()
    if settings.marts_engine == "spark":
        _spark_up(settings)
    fake_api_service.up(settings, log=_indent)
    airflow_service.init(settings, log=_indent)
    print(f"Mode     {_mode_line()}")
    print(f"Airflow  {airflow_service.start(settings, log=_indent)}")
    print(f"Superset {superset_service.up(settings, log=_indent)}")


def _spark_up(settings) -> None:
    """Spark mode: the cluster up, and every day already loaded into DuckDB registered on it (a catch-up)."""
    from ingestion.spark_tables import loaded_manifests, register_partitions
    from stackctl import spark_service

    cfg = spark_service.up(settings)
    registered = register_partitions(settings, loaded_manifests(settings), "up")
    print(
        f"Spark    {cfg.master_url} ({cfg.workers} workers), UI http://{spark_service.HOST}:{cfg.master_ui_port}; "
        f"Thrift {spark_service.HOST}:{cfg.thrift_port}; {len(registered)} raw tables registered",
        flush=True,
    )


def _mode_line() -> str:
    from stackctl import cluster

    engine = "; marts built on Spark (MARTS_ENGINE=spark)" if get_settings().marts_engine == "spark" else ""
    if not cluster.is_cluster():
        return f"embedded (SQLite metadata, LocalExecutor, caches on disk){engine}"
    cfg = cluster.config()
    return (
        f"cluster ({cfg.workers} Celery worker(s) x {cfg.worker_concurrency} on {cfg.broker_url}, "
        f"Airflow and Superset metadata on PostgreSQL, Superset cache on Redis){engine}"
    )


def cmd_airflow_init(args: argparse.Namespace) -> None:
    from stackctl import airflow_service

    airflow_service.init(get_settings(), log=_indent)


def cmd_stop(args: argparse.Namespace) -> None:
    from stackctl import airflow_service, fake_api_service, spark_service, superset_service

    settings = get_settings()
    stopped = airflow_service.stop(settings) + superset_service.down(settings) + fake_api_service.down(settings)
    stopped += spark_service.down(settings)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def cmd_status(args: argparse.Namespace) -> None:
    from stackctl import procs

    settings = get_settings()
    for name in sorted(p.stem for p in settings.run_dir.glob("*.pid")) or ["(no services started)"]:
        print(f"{name:24} {'running' if procs.is_running(name, settings.run_dir) else 'stopped'}")


def _indent(msg: str) -> None:
    print(f"    {msg}", flush=True)


def _stepper():
    count = [0]
    began = time.monotonic()

    def step(msg: str) -> None:
        count[0] += 1
        print(f"[{count[0]}] {msg}  (+{time.monotonic() - began:.0f}s)", flush=True)

    return step


@dataclass(frozen=True)
class Area:
    """A package's own command line, run as `python -m stackctl <name> ...`."""

    module: str  # imported when the area runs: its `main(argv)` parses the rest
    help: str


# This file is a command line, the top of the stack (tests/core/test_layers.py): it may import any
# layer, the benchmark beside it included. Dispatching to an area's CLI is not a dependency of the
# library code; `run_area` imports an area's module only when that area runs.
AREAS = {
    "quality": Area(
        "quality.__main__", "quality gates, the quarantine (list/show/patch/release/dismiss), freshness, GX docs"
    ),
    "partner-files": Area(
        "ingestion.partner_files.__main__", "partner files: process the inbox, quarantine, release, ledger, samples"
    ),
    "governance": Area(
        "governance.__main__",
        "data subject requests, PII and catalog checks, stale assets (report, deprecate, archive, restore), "
        "access log, audit log verify",
    ),
    "ml": Area("ml.__main__", "churn model: daily drift check, retraining and scoring; registry status"),
    "superset": Area("stackctl.superset_service", "Superset: up/down/status, metadata init, asset import/export"),
    "bench": Area("bench.__main__", "the benchmark: the pipeline against the DuckDB floor and pandas, per scale"),
    "dbt-portable": Area("stackctl.dbt_portable", "copy the warehouse's raw layer to PostgreSQL (dbt postgres target)"),
    "spark": Area("stackctl.spark_service", "Spark mode: the cluster up/down/status, the lake registered as tables"),
}


def _one_line_error(parser: argparse.ArgumentParser, message: str) -> None:
    parser.exit(2, f"error: {message} (see `{parser.prog} --help`)\n")


@contextlib.contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """A bad argument, in any area's parser, is one line `error: ...` and exit 2, not a usage screen.

    The areas build their own parsers (the older `python -m <area>` entry points keep argparse's
    usual output); this one command line sets the rule for every parser it runs.
    """
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _one_line_error  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


def run_area(name: str, argv: list[str]) -> int:
    """Run `python -m stackctl <name> <argv...>` through the area's own `main(argv)`."""
    area_main = importlib.import_module(AREAS[name].module).main
    prog = f"python -m stackctl {name}"
    # An area whose main takes `prog` names itself as run here in its usage and help.
    kwargs = {"prog": prog} if "prog" in inspect.signature(area_main).parameters else {}
    try:
        with one_line_usage_errors():
            return int(area_main(argv, **kwargs) or 0)
    except Exception as exc:
        # What the stack commands turn into one line (a bad .env is already one line, from the
        # area's prepare_command); anything else is a bug and keeps its traceback.
        if isinstance(exc, _known_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def run_airflow(argv: list[str]) -> int:
    """`python -m stackctl airflow <args>` (`make airflow ARGS=...`): Airflow's own CLI with exactly the
    environment the stack's Airflow processes get: .env, AIRFLOW_HOME, the AIRFLOW__* settings, the
    connections (AIRFLOW_CONN_*), PYTHONPATH. Airflow's configuration lives only there, not in
    `var/airflow/airflow.cfg`, so a bare `airflow` in a shell would see another Airflow."""
    from core.envfile import EnvFileError, load_env
    from core.private_files import use_private_umask
    from stackctl import airflow_service
    from stackctl.cluster import ClusterError, use_mode

    try:
        load_env(required=True)
        use_mode(None)
        env = airflow_service.airflow_env(get_settings())
    except (EnvFileError, SettingError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Airflow writes logs and metadata that may hold personal data, as the stack's services do.
    use_private_umask()
    binary = airflow_service.airflow_bin()
    os.execve(binary, [binary, *argv], env)  # noqa: S606 - our own binary, the user's arguments
    raise AssertionError("unreachable")  # execve does not return


def _parser() -> argparse.ArgumentParser:
    areas = "\n".join(f"  {name:<16}{area.help}" for name, area in AREAS.items())
    parser = argparse.ArgumentParser(
        prog="python -m stackctl",
        usage="python -m stackctl [-h] <command> ... | <area> <command> ...",
        description=__doc__.split("\n\n")[0],
        epilog=f"areas (`python -m stackctl <area> --help` lists an area's commands):\n{areas}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, title="stack commands", metavar="<command>", prog="python -m stackctl"
    )

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text)

    command("env", "create/complete the untracked .env with generated credentials")
    days_help = "days of history (default: DEMO_DAYS or 90)"
    p = command("simulate", "generate or extend the shop's app DB")
    p.add_argument("--days", type=positive_int, default=_demo_days(), help=days_help)
    p.add_argument(
        "--end", type=iso_date, metavar="DAY", help="last day to simulate, YYYY-MM-DD (default: yesterday, UTC)"
    )
    p = command("pipeline", "run the pipeline headless for a date range")
    p.add_argument("--from", dest="start", type=iso_date, required=True, metavar="DAY", help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", type=iso_date, required=True, metavar="DAY", help="last day, YYYY-MM-DD")
    p.add_argument("--run-id")
    command("dbt-parse", "write dbt_project/target/manifest.json")
    p = command("dbt", "run dbt in the project with the stack's settings (DBT_TARGET=prod|dev)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's own arguments, e.g. build --select fct_orders")
    mode_help = (
        "embedded (SQLite, LocalExecutor; default), cluster (PostgreSQL, Celery on Redis; or STACK_MODE) "
        "or spark (embedded, marts built on a local Spark cluster; or MARTS_ENGINE=spark)"
    )
    p = command("run", "set up data and start the whole stack")
    p.add_argument("--days", type=positive_int, default=_demo_days(), help=days_help)
    p.add_argument("--run-timeout", type=positive_float, default=900, help="seconds to wait for the DAG runs")
    p.add_argument("--mode", choices=["embedded", "cluster"], help=mode_help)
    p = command("up", "start Airflow and Superset (and the Spark cluster in Spark mode)")
    p.add_argument("--mode", choices=["embedded", "cluster", "spark"], help=mode_help)
    command("airflow-init", "create/upgrade Airflow's metadata DB and pools")
    p = command("airflow", "Airflow's own CLI with the stack's environment, e.g. `airflow dags list`")
    p.add_argument("airflow_args", nargs=argparse.REMAINDER, help="e.g. dags test shop_daily 2026-01-02")
    command("stop", "stop what `run`/`up` started")
    command("status", "which services are running")
    for name in AREAS:
        # Dispatched before parsing and listed in the epilog; here (without a help line, so not
        # listed twice) only so that a mistyped command's error names them too.
        sub.add_parser(name, add_help=False)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _demo_days() -> int:
    value = os.environ.get("DEMO_DAYS", "90")
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"error: DEMO_DAYS: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in AREAS:
        return run_area(argv[0], argv[1:])
    if argv and argv[0] == "airflow":
        # Everything after `airflow` is Airflow's own (`--help` included), so it is not parsed here.
        return run_airflow(argv[1:])
    parser = _parser()
    with one_line_usage_errors():
        args = parser.parse_args(argv)
        if args.command == "pipeline" and args.start > args.end:
            _subparser(parser, "pipeline").error(f"--from {args.start} is after --to {args.end}")

    from core.envfile import EnvFileError, load_env
    from core.private_files import tighten_data_dirs, use_private_umask

    # Everything this command and the services it starts write may hold personal data.
    use_private_umask()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {
        "env": cmd_env,
        "simulate": cmd_simulate,
        "pipeline": cmd_pipeline,
        "dbt-parse": cmd_dbt_parse,
        "dbt": cmd_dbt,
        "run": cmd_run,
        "up": cmd_up,
        "airflow-init": cmd_airflow_init,
        "stop": cmd_stop,
        "status": cmd_status,
    }
    known = (EnvFileError, SettingError, *_known_errors())
    try:
        if args.command == "run":
            cmd_env(args)
        load_env(required=args.command not in {"env", "stop", "status"})
        from stackctl.cluster import use_mode

        # After .env: a --mode flag wins over STACK_MODE (and MARTS_ENGINE) there; cluster mode
        # fills its defaults. Spark mode is the marts engine, on the embedded or the cluster mode.
        mode = getattr(args, "mode", None)
        if mode == "spark":
            os.environ["MARTS_ENGINE"] = "spark"
        use_mode(None if mode == "spark" else mode)
        if args.command in {"run", "up", "pipeline", "simulate"}:
            settings = get_settings()
            # Folders made by an older version (or another umask) stop being readable by others.
            tighten_data_dirs(settings.app_db_dir, settings.lake_dir, settings.warehouse_dir, settings.var_dir)
        handlers[args.command](args)
    except known as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _known_errors() -> tuple[type[BaseException], ...]:
    """The failures with a message that says what to do (imported only when one is raised)."""
    from core.envfile import EnvFileError
    from ingestion.app_db.connection import AppDbError
    from ingestion.simulator.run import SimulatorError
    from quality.results import GateFailed
    from stackctl.procs import ServiceError
    from superset.provision import ProvisionError

    return (EnvFileError, SettingError, AppDbError, SimulatorError, ServiceError, GateFailed, ProvisionError)


if __name__ == "__main__":
    sys.exit(main())
