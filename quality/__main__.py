"""Command line for the gates: `python -m quality {gate1,gate2,quarantine,freshness,sync,docs}`.

Prints the gate's one-line reason (and with -v every expectation); exit status 0 when the gate
passes (or the check is fine), 1 when it fails, 2 when it could not run (missing files, bad
arguments, an unknown quarantine id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli_types import iso_date

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _day(text: str) -> str:
    """An argparse `type=`: a logical date, checked as YYYY-MM-DD and kept as that text."""
    return iso_date(text).isoformat()


def _parser(prog: str = "python -m quality") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gate1 = commands.add_parser("gate1", help="audit a landed batch of one table before it is loaded")
    gate1.add_argument("table", help="raw table name, e.g. orders")
    gate1.add_argument("--ds", required=True, type=_day, help="logical date YYYY-MM-DD")
    gate1.add_argument("--run-id", required=True)
    gate1.add_argument(
        "--parquet",
        nargs="+",
        type=Path,
        help="the batch's files (default: every part-*.parquet of the lake partition)",
    )
    gate1.add_argument("--source", default="shop", help="lake source folder (default: shop)")
    gate1.add_argument("--expected-rows", type=int, help="row count to expect (default: from _manifest.json)")

    gate2 = commands.add_parser("gate2", help="audit the marts in the warehouse before publishing")
    gate2.add_argument("--run-id", required=True)
    gate2.add_argument("--ds", type=_day, help="the day the run produced: the mart must reach it")
    gate2.add_argument("--warehouse", type=Path, help="warehouse file (default: settings.warehouse_path)")
    gate2.add_argument(
        "--serving", type=Path, help="published file the anomaly bounds come from (default: settings.serving_path)"
    )
    gate2.add_argument("--table", action="append", help="only this mart (repeatable)")

    for command in (gate1, gate2):
        command.add_argument(
            "--record", action="store_true", help="also write the rows to ops.data_health in the warehouse"
        )
        command.add_argument("-v", "--verbose", action="store_true", help="print every expectation")

    held = commands.add_parser(
        "quarantine", help="everything held in lake/quarantine (gate-1 batches and partner files): list, act on it"
    )
    actions = held.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="what is held and why (one line each), both kinds")
    listing.add_argument("--all", action="store_true", help="also released, superseded and dismissed items")
    listing.add_argument("--kind", choices=["gate1_batch", "partner_file"], help="only this kind")
    listing.add_argument("--json", action="store_true", help="the full records (kind, what, day, status ...)")
    show = actions.add_parser("show", help="the full report of one item")
    show.add_argument("id", help="quarantine id (or a unique prefix), as `list` prints it")
    show.add_argument("--json", action="store_true", help="print reason.json instead of REPORT.md")
    patch = actions.add_parser("patch", help="correct a held gate-1 batch in place with one SQL statement on `batch`")
    patch.add_argument("id")
    patch.add_argument("--sql", required=True, help='e.g. "update batch set unit_price_cents = abs(unit_price_cents)"')
    release = actions.add_parser(
        "release",
        help="a gate-1 batch: re-run gate 1, if it passes move it back to lake/raw; "
        "a partner file: move the (fixed) file back to the inbox for the next run",
    )
    release.add_argument("id")
    release.add_argument(
        "--force", action="store_true", help="partner file: even if a later file for the same day was loaded"
    )
    release.add_argument("--partner", help="partner file: release into another partner's folder (misplaced file)")
    dismiss = actions.add_parser("dismiss", help="close a held partner file without releasing it")
    dismiss.add_argument("id")
    dismiss.add_argument("--note", required=True, help="why (kept in DISMISSED.json)")

    freshness = commands.add_parser("freshness", help="check every source against its freshness SLA")
    freshness.add_argument("--no-alert", action="store_true", help="do not send alerts")
    freshness.add_argument("--no-record", action="store_true", help="do not write ops.source_freshness")

    sync = commands.add_parser("sync", help="store the suites and checkpoints from code in quality/gx/")
    sync.add_argument("--check", action="store_true", help="only list what differs; exit 1 if anything does")
    docs = commands.add_parser("docs", help="rebuild the Data Docs site and print its index path")
    docs.add_argument(
        "--keep-days", type=int, default=None, help="first delete validation results older than this many days"
    )
    return parser


def _print_result(result, verbose: bool) -> int:
    print(result.reason)
    if verbose:
        for outcome in result.outcomes:
            mark = {"passed": "ok  ", "warned": "WARN", "failed": "FAIL"}[outcome.status]
            print(f"  {mark} {outcome.suite} {outcome.label}: {outcome.observed_value}")
        print(f"  Data Docs: {result.docs_index}")
    return EXIT_PASSED if result.success else EXIT_FAILED


def _quarantine(args, settings) -> int:
    """The quarantine subcommands: one listing of both kinds, each action done by its kind's module."""
    import json
    from dataclasses import asdict

    from quality import quarantine
    from quality import quarantine_records as records
    from quality.results import GateFailed

    if args.action == "list":
        found = records.records(settings, None if args.all else quarantine.HELD, args.kind)
        if args.json:
            print(json.dumps([asdict(r) for r in found], indent=2, default=str))
            return EXIT_PASSED
        if not found:
            print("nothing held in quarantine" if not args.all else "nothing was ever quarantined")
        for r in found:
            print(f"{r.status:<10} {r.id}  {r.quarantined_at.isoformat()}  {r.reason}")
        return EXIT_PASSED
    record = records.find(settings, args.id)
    partner_file = record.kind == records.PARTNER_FILE
    if args.action == "show":
        if args.json:
            print(json.dumps(records.reason_document(record), indent=2, default=str))
        else:
            print(records.report(settings, record), end="")
        return EXIT_PASSED
    if args.action == "dismiss":
        if not partner_file:
            raise quarantine.QuarantineError(
                f"{record.id} is a gate-1 batch: it is closed by a release or by re-landing the day (superseded)"
            )
        records.dismiss_partner_file(settings, record, args.note)
        records.sync_table_best_effort(settings)
        print(f"dismissed {record.id}")
        return EXIT_PASSED
    if args.action == "patch":
        if partner_file:
            raise quarantine.QuarantineError(
                f"{record.id} is a partner file: fix {record.folder}/ in place (or get a corrected file), "
                f"then `python -m quality quarantine release {record.id}`"
            )
        entry = quarantine.patch(settings, record.id, args.sql)
        quarantine.sync_table(settings, wait_seconds=60)
        print(f"patched {entry.quarantine_id}: {entry.history[-1]['detail']}; now release it")
        return EXIT_PASSED
    if partner_file:
        target = records.release_partner_file(settings, record, to_partner=args.partner, force=args.force)
        records.sync_table_best_effort(settings)
        print(f"released {record.id} to {target}; the next partner_files run processes it")
        return EXIT_PASSED
    if args.force or args.partner:
        raise quarantine.QuarantineError("--force and --partner are for partner files; this is a gate-1 batch")
    try:
        result = quarantine.release(settings, record.id)
    except GateFailed as failed:
        print(f"still failing, kept in quarantine: {failed}")
        return EXIT_FAILED
    print(f"released {record.id} to lake/raw: {result.reason}")
    print("next: clear the run's `gate_landed` task (with downstream) in Airflow, so the day is loaded and published")
    return EXIT_PASSED


def main(argv: list[str] | None = None, prog: str = "python -m quality") -> int:
    args = _parser(prog).parse_args(argv)
    from core.command import prepare_command
    from core.settings import get_settings

    prepare_command()

    settings = get_settings()
    try:
        if args.command == "sync":
            from quality.context import sync

            changes = sync(check=args.check)
            for change in dict.fromkeys(changes):
                print(("differs: " if args.check else "stored: ") + change)
            return EXIT_FAILED if (args.check and changes) else EXIT_PASSED
        if args.command == "docs":
            from quality.context import build_docs

            print(build_docs(keep_days=args.keep_days))
            return EXIT_PASSED
        if args.command == "quarantine":
            return _quarantine(args, settings)
        if args.command == "freshness":
            from quality.freshness import FreshnessBreach, check_freshness

            try:
                rows = check_freshness(settings, alert=not args.no_alert, record=not args.no_record, wait_seconds=60)
            except FreshnessBreach as breach:
                print(breach)
                return EXIT_FAILED
            for row in rows:
                print(row.summary)
            return EXIT_PASSED

        from core.dbt_manifest import unserved_marts
        from quality import record_results, validate_landed_batch, validate_marts

        warehouse = settings.warehouse_path
        if args.command == "gate1":
            paths = args.parquet or sorted(
                (settings.lake_raw_dir / args.source / args.table / f"ds={args.ds}").glob("part-*.parquet")
            )
            if not paths:
                raise FileNotFoundError(f"no landed files for {args.source}.{args.table} ds={args.ds}")
            result = validate_landed_batch(
                args.table, paths, args.run_id, args.ds, expected_row_count=args.expected_rows
            )
        else:
            warehouse = args.warehouse or warehouse
            result = validate_marts(
                warehouse,
                args.run_id,
                ds=args.ds,
                serving_path=args.serving or settings.serving_path,
                tables=args.table,
                settings=settings,
                unserved=unserved_marts(settings),
            )
        if args.record:
            record_results(warehouse, result, settings=settings)
        return _print_result(result, args.verbose)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as error:
        from quality.quarantine import QuarantineError

        if isinstance(error, QuarantineError):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
