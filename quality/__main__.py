"""Command line for the gates: `python -m quality {gate1,gate2,sync,docs}`.

Prints the gate's one-line reason (and with -v every expectation); exit status 0 when the gate
passes, 1 when it fails, 2 when it could not run (missing files, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m quality", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gate1 = commands.add_parser("gate1", help="audit a landed batch of one table before it is loaded")
    gate1.add_argument("table", help="raw table name, e.g. orders")
    gate1.add_argument("--ds", required=True, help="logical date YYYY-MM-DD")
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
    gate2.add_argument("--warehouse", type=Path, help="warehouse file (default: settings.warehouse_path)")
    gate2.add_argument("--table", action="append", help="only this mart (repeatable)")

    for command in (gate1, gate2):
        command.add_argument(
            "--record", action="store_true", help="also write the rows to ops.data_health in the warehouse"
        )
        command.add_argument("-v", "--verbose", action="store_true", help="print every expectation")

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
            mark = "ok  " if outcome.success else "FAIL"
            print(f"  {mark} {outcome.suite} {outcome.label}: {outcome.observed_value}")
        print(f"  Data Docs: {result.docs_index}")
    return EXIT_PASSED if result.success else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from stackctl.settings import get_settings

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
                tables=args.table,
                memory_limit=settings.duckdb_memory_limit,
                threads=settings.duckdb_threads,
            )
        if args.record:
            record_results(
                warehouse, result, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
            )
        return _print_result(result, args.verbose)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
