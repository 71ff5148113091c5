"""The governance CLI: data subject requests, PII and catalog checks, access log, audit log.

    python -m stackctl governance dsr export --customer-id 42 | --email ana@example.com [--out FILE.zip]
    python -m stackctl governance dsr erase  --customer-id 42 | --email ana@example.com --yes
    python -m stackctl governance dsr reapply               erase again any erased subject that came back
    python -m stackctl governance check                     untagged PII in the source contracts (exit 1 if any)
    python -m stackctl governance catalog check             owners and descriptions in dbt's manifest (exit 1 if
                                                            missing)
    python -m stackctl governance catalog stale [--days N]  stale assets: ops.stale_assets,
                                                            var/governance/stale_assets.md
    python -m stackctl governance catalog deprecate         deprecate today's stale models (YAML, Superset warning),
                                                            tell their owners
    python -m stackctl governance catalog archive           archive deprecated models past STALE_GRACE_DAYS: export
                                                            and remove their dashboards, disable the model
    python -m stackctl governance catalog restore ID        undo an archive (ID: <date>/<model>, or the model's name)
    python -m stackctl governance access-log collect        Superset + Airflow + governance -> ops.access_log
    python -m stackctl governance audit verify              the audit log is whole: chain, anchor file, warehouse
                                                            anchors ("ok, N entries, head <hash>"; exit 1 and the
                                                            problems if not)

(`python -m governance ...` is the same command line.) The requester is recorded as
GOVERNANCE_ACTOR (default: the OS user). The stack's `.env` is read first (the caller's environment
wins), so no setting has to be exported by hand; a missing or unusable setting, an unreachable
service, a missing file or a broken audit log is one line on stderr, exit 1; a bad argument or a
subject found nowhere is one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.settings import get_settings


def _customer_id(text: str) -> int:
    """An argparse `type=`: a customer id is a whole number above zero."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a customer id (a whole number above 0)")
    return int(text)


def _email(text: str) -> str:
    """An argparse `type=`: something that can be an e-mail address (the lookup decides the rest)."""
    local, at, domain = text.strip().partition("@")
    if not (local and at and domain) or any(c.isspace() for c in text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an e-mail address")
    return text.strip()


def _days(text: str) -> int:
    """An argparse `type=`: a number of days above zero."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (a whole number above 0)")
    return int(text)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(group, name: str, text: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=text, description=text)

    dsr = command(sub, "dsr", "data subject requests").add_subparsers(dest="action", required=True)
    for action, text in (
        ("export", "everything held about one person, as a zip archive"),
        ("erase", "erase one person everywhere, then rebuild and republish the marts"),
    ):
        request = command(dsr, action, text)
        who = request.add_mutually_exclusive_group(required=True)
        who.add_argument("--customer-id", type=_customer_id)
        who.add_argument("--email", type=_email)
        if action == "export":
            request.add_argument("--out", type=Path, help="archive path (default var/governance/exports/<id>.zip)")
        else:
            request.add_argument("--yes", action="store_true", help="confirm: the erasure cannot be undone")
    command(dsr, "reapply", "erase again any erased subject that came back")
    command(sub, "check", "untagged PII in the source contracts (exit 1 if any)")
    catalog = command(sub, "catalog", "the data catalog: owners, descriptions, stale assets")
    catalog_actions = catalog.add_subparsers(dest="action", required=True)
    command(catalog_actions, "check", "owners and descriptions in dbt's manifest (exit 1 if missing)")
    stale = command(catalog_actions, "stale", "stale assets: ops.stale_assets and var/governance/stale_assets.md")
    stale.add_argument("--days", type=_days, help="stale after this many days (default: the stack's setting)")
    command(catalog_actions, "deprecate", "deprecate today's stale models (YAML, Superset warning), tell the owners")
    command(catalog_actions, "archive", "archive deprecated models past STALE_GRACE_DAYS (export, remove, disable)")
    restore = command(catalog_actions, "restore", "re-import an archive's Superset assets and re-enable its model")
    restore.add_argument("archive_id", help="<date>/<model> as printed by `archive` (or the model's name: its latest)")
    access_log = command(sub, "access-log", "who read what: ops.access_log")
    collect = "Superset + Airflow + governance -> ops.access_log"
    command(access_log.add_subparsers(dest="action", required=True), "collect", collect)
    audit = command(sub, "audit", "the governance audit log")
    verify = "the audit log is whole: chain, anchor file, warehouse anchors"
    command(audit.add_subparsers(dest="action", required=True), "verify", verify)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m governance") -> int:
    args = _parser(prog).parse_args(argv)
    from core.command import prepare_command
    from governance.access_log import AuditLogBroken
    from governance.airflow_audit import AirflowAuditUnavailable
    from governance.audit import MissingSetting
    from stackctl.cluster import use_mode
    from stackctl.procs import ServiceError
    from superset.provision import ProvisionError

    prepare_command()  # the stack's .env (a bad one is one line, exit 2); files created private
    try:
        # An erasure republishes, which clears Superset's cache: in cluster mode, in Redis.
        use_mode(None)
        return _run(args)
    except (
        MissingSetting,
        AirflowAuditUnavailable,
        AuditLogBroken,
        ServiceError,
        FileNotFoundError,
        ProvisionError,
    ) as exc:
        # The reason and the fix are in the message; a traceback would only hide them.
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.command == "dsr":
        from governance import dsr
        from pipelines.marts import rebuild_and_publish

        if args.action == "reapply":
            print(json.dumps(dsr.reapply_erasures(settings, republish=rebuild_and_publish)))
            return 0
        if args.action == "erase" and not args.yes:
            print("error: erasure cannot be undone: add --yes", file=sys.stderr)
            return 2
        try:
            summary = dsr.run_request(
                settings,
                args.action,
                args.customer_id,
                args.email,
                republish=rebuild_and_publish,
                out=getattr(args, "out", None),
            )
        except dsr.SubjectNotFound as exc:
            # An unknown id or address is a bad argument: one line, like argparse's own.
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2, default=str))
        return 0
    if args.command == "check":
        from governance.classification import all_sources
        from governance.pii_check import untagged_pii

        findings = untagged_pii(all_sources())
        for finding in findings:
            print(finding)
        return 1 if findings else 0
    if args.command == "catalog":
        from governance import catalog
        from serving.publish import dbt_manifest_path

        if args.action == "check":
            findings = catalog.completeness(catalog.load_manifest(dbt_manifest_path(settings)))
            for finding in findings:
                print(finding)
            print(f"{len(findings)} finding(s)", file=sys.stderr)
            return 1 if findings else 0
        if args.action == "stale":
            print(catalog.write_stale_report(settings, days=args.days))
            return 0
        return _lifecycle(settings, args)
    if args.command == "access-log":
        from governance import access_log

        print(json.dumps(access_log.collect(settings)))
        return 0
    return _verify_audit_log(settings)


def _lifecycle(settings, args: argparse.Namespace) -> int:
    # A command line may compose the layers: governance decides, superset/deprecation.py acts in Superset.
    from governance.lifecycle import LifecycleError, PresentationUnavailable
    from superset import deprecation

    if args.action == "restore":
        try:
            print(json.dumps(deprecation.restore(settings, args.archive_id), indent=2, default=str))
        except LifecycleError as exc:  # an unknown archive id is a bad argument
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except PresentationUnavailable as exc:  # nothing changed: the model was put back as archived
            print(f"error: Superset is needed to restore the dashboards: {exc}", file=sys.stderr)
            return 1
        return 0
    step = deprecation.deprecate if args.action == "deprecate" else deprecation.archive
    print(json.dumps(step(settings), indent=2))
    return 0


def _verify_audit_log(settings) -> int:
    import duckdb

    from governance import audit
    from governance.access_log import warehouse_anchors

    try:
        anchors = warehouse_anchors(settings)
    except duckdb.IOException:  # another process is writing the warehouse right now
        anchors = []
        print("note: the warehouse is busy; its anchors were not checked this time", file=sys.stderr)
    result = audit.verify(settings, anchors=anchors)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
