"""The engineer's command line for partner files.

    python -m ingestion.partner_files list [--all] [--json]     what is held in quarantine, and why
    python -m ingestion.partner_files process [--no-load]        process the inbox now (then load the warehouse)
    python -m ingestion.partner_files release <id> [--force] [--partner P]
                                                                 move a fixed file back to the inbox
    python -m ingestion.partner_files dismiss <id> --note "..."  close an item without releasing it
    python -m ingestion.partner_files ledger [--json]            every file content received, and its fate
    python -m ingestion.partner_files samples [--day D] [--kind K ...]
                                                                 drop example files (default: the demo set)

`list`, `release` and `dismiss` act on held partner files only; `python -m quality quarantine`
lists them together with the batches gate 1 held (and its `show`, `release` and `dismiss` do for a
partner file what this command does).

Paths come from the stack's settings (LAKE_DIR, WAREHOUSE_PATH ...). `process` loads the warehouse
itself, so do not run it while the Airflow DAG holds the warehouse (it is the same single writer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from dataclasses import asdict

from core.cli_types import iso_date
from core.command import prepare_command
from core.settings import get_settings
from ingestion.partner_files import quarantine, samples
from ingestion.partner_files.ledger import Ledger
from ingestion.partner_files.process import inbox_dir, ledger_path, load_landed, process_inbox


def main(argv: list[str] | None = None, prog: str = "python -m ingestion.partner_files") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="what is held in quarantine and why")
    p_list.add_argument("--all", action="store_true", help="include released, dismissed and superseded items")
    p_list.add_argument("--json", action="store_true")
    p_proc = sub.add_parser("process", help="process the inbox now, then load the warehouse")
    p_proc.add_argument("--no-load", action="store_true", help="land in the lake only (no warehouse write)")
    p_proc.add_argument("--run-id", default=None)
    p_proc.add_argument("--settle-seconds", type=float, default=None)
    p_rel = sub.add_parser("release", help="move a (fixed) held file back to the inbox")
    p_rel.add_argument("id", help="the item id from `list`, or a unique prefix of its sha256")
    p_rel.add_argument("--force", action="store_true", help="even if a later file for the same day was loaded")
    p_rel.add_argument("--partner", default=None, help="release into another partner's folder (misplaced file)")
    p_dis = sub.add_parser("dismiss", help="close a held item without releasing it")
    p_dis.add_argument("id")
    p_dis.add_argument("--note", required=True, help="why (kept in DISMISSED.json)")
    p_led = sub.add_parser("ledger", help="every file content received and what became of it")
    p_led.add_argument("--json", action="store_true")
    p_smp = sub.add_parser("samples", help="drop example partner files into the inbox")
    p_smp.add_argument("--day", type=iso_date, default=dt.datetime.now(dt.UTC).date() - dt.timedelta(1))
    p_smp.add_argument("--kind", action="append", choices=sorted(samples.KINDS), help="default: the demo set")
    args = parser.parse_args(argv)
    prepare_command()  # run by hand: the stack's .env, files created private
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = get_settings()

    if args.command == "list":
        ledger = Ledger(ledger_path(settings))
        held = quarantine.items(settings, ledger, include_closed=args.all)
        if args.json:
            print(json.dumps([{"id": i.id, "state": i.state, **i.reason} for i in held], indent=2, default=str))
            return 0
        if not held:
            print("nothing held in quarantine")
        for item in held:
            counts = item.reason.get("counts", {})
            print(f"{item.id}  [{item.state}]")
            print(f"    {item.summary}")
            if counts:
                print(
                    f"    rows in {counts['rows_in']}, loaded {counts['rows_loaded']}, "
                    f"quarantined {counts['rows_quarantined']}; report: {item.path / 'REPORT.md'}"
                )
        return 0

    if args.command == "process":
        run_id = args.run_id or "cli-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        summary = process_inbox(settings, run_id, settle_seconds=args.settle_seconds)
        result = summary.as_dict()
        if not args.no_load:
            result["load"] = asdict(load_landed(settings, run_id))
        print(json.dumps(result, indent=2, default=str))
        return 0

    if args.command == "release":
        ledger = Ledger(ledger_path(settings))
        try:
            target = quarantine.release(
                settings, ledger, args.id, inbox=inbox_dir(settings), to_partner=args.partner, force=args.force
            )
        except LookupError as exc:  # an unknown id is a bad argument: one line, exit 2, like argparse's own
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (RuntimeError, FileNotFoundError, FileExistsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"released to {target}; the next run processes it")
        return 0

    if args.command == "dismiss":
        try:
            item = quarantine.dismiss(settings, args.id, args.note)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"dismissed {item.id}")
        return 0

    if args.command == "ledger":
        entries = Ledger(ledger_path(settings)).entries()
        if args.json:
            print(json.dumps([asdict(e) for e in entries], indent=2))
            return 0
        for e in entries:
            print(
                f"{e.received_at[:19]}  {e.sha256[:12]}  {e.partner}/{e.file_name}  {e.status}"
                f"  ds={e.ds}  in={e.rows_in} loaded={e.rows_loaded} quarantined={e.rows_quarantined}"
            )
        return 0

    if args.command == "samples":
        inbox = inbox_dir(settings)
        if args.kind:
            names = [samples.build(kind, args.day).file_name for kind in args.kind]
            paths = []
            for kind, name in zip(args.kind, names, strict=True):
                # One file per partner and day replaces the day: give colliding kinds their own names.
                stem, ext = name.rsplit(".", 1)
                unique = name if names.count(name) == 1 else f"{stem}_{kind}.{ext}"
                paths.append(samples.write_sample(inbox, kind, args.day, unique))
        else:
            paths = samples.write_demo(inbox, args.day)
        for path in paths:
            print(path)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
