"""`python -m stackctl <command>`: what the Makefile's targets run.

Every command turns the stack's known failure modes (missing .env, unreachable app DB, a port
in use, a failing gate) into one line saying what to do, instead of a stack trace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time

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
    end = dt.date.fromisoformat(args.end) if args.end else _yesterday()
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
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
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
    cmd_simulate(argparse.Namespace(days=args.days - 1, end=str(history_end)))
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
    cmd_simulate(argparse.Namespace(days=args.days, end=str(yesterday)))
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
    print("    partner files processed (python -m ingestion.partner_files list shows the quarantine)", flush=True)


def cmd_up(args: argparse.Namespace) -> None:
    from stackctl import airflow_service, fake_api_service, superset_service

    settings = get_settings()
    fake_api_service.up(settings, log=_indent)
    airflow_service.init(settings, log=_indent)
    print(f"Mode     {_mode_line()}")
    print(f"Airflow  {airflow_service.start(settings, log=_indent)}")
    print(f"Superset {superset_service.up(settings, log=_indent)}")


def _mode_line() -> str:
    from stackctl import cluster

    if not cluster.is_cluster():
        return "embedded (SQLite metadata, LocalExecutor, caches on disk)"
    cfg = cluster.config()
    return (
        f"cluster ({cfg.workers} Celery worker(s) x {cfg.worker_concurrency} on {cfg.broker_url}, "
        "Airflow and Superset metadata on PostgreSQL, Superset cache on Redis)"
    )


def cmd_airflow_init(args: argparse.Namespace) -> None:
    from stackctl import airflow_service

    airflow_service.init(get_settings(), log=_indent)


def cmd_stop(args: argparse.Namespace) -> None:
    from stackctl import airflow_service, fake_api_service, superset_service

    settings = get_settings()
    stopped = airflow_service.stop(settings) + superset_service.down(settings) + fake_api_service.down(settings)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="create/complete the untracked .env with generated credentials")
    p = sub.add_parser("simulate", help="generate or extend the shop's app DB")
    p.add_argument("--days", type=int, default=int(os.environ.get("DEMO_DAYS", "90")))
    p.add_argument("--end", help="last day to simulate (default: yesterday, UTC)")
    p = sub.add_parser("pipeline", help="run the pipeline headless for a date range")
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end", required=True)
    p.add_argument("--run-id")
    sub.add_parser("dbt-parse", help="write dbt_project/target/manifest.json")
    p = sub.add_parser("dbt", help="run dbt in the project with the stack's settings (DBT_TARGET=prod|dev)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    mode_help = "embedded (SQLite, LocalExecutor; default) or cluster (PostgreSQL, Celery on Redis); or STACK_MODE"
    p = sub.add_parser("run", help="set up data and start the whole stack")
    p.add_argument("--days", type=int, default=int(os.environ.get("DEMO_DAYS", "90")))
    p.add_argument("--run-timeout", type=float, default=900)
    p.add_argument("--mode", choices=["embedded", "cluster"], help=mode_help)
    p = sub.add_parser("up", help="start Airflow and Superset")
    p.add_argument("--mode", choices=["embedded", "cluster"], help=mode_help)
    sub.add_parser("airflow-init", help="create/upgrade Airflow's metadata DB and pools")
    sub.add_parser("stop", help="stop what `run`/`up` started")
    sub.add_parser("status", help="which services are running")
    args = parser.parse_args(argv)

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

        # After .env: a --mode flag wins over STACK_MODE there; cluster mode fills its defaults.
        use_mode(getattr(args, "mode", None))
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
    from ingestion.app_db.connection import AppDbError
    from ingestion.simulator.run import SimulatorError
    from quality.results import GateFailed
    from stackctl.procs import ServiceError

    return (AppDbError, SimulatorError, ServiceError, GateFailed)


if __name__ == "__main__":
    sys.exit(main())
