"""CLI: `python -m stackctl ml daily [--run-id ID] [--publish]` runs drift check, retraining and
scoring once; `python -m stackctl ml status` prints the registry (current model, versions, last
decisions). `python -m ml ...` is the same command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from core.command import prepare_command
from core.settings import get_settings
from ml.settings import ml_settings


def main(argv: list[str] | None = None, prog: str = "python -m ml") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    text = "drift check -> retrain if needed -> score"
    daily = sub.add_parser("daily", help=text, description=text)
    daily.add_argument("--run-id", default=None, help="the run's id (default: manual__<UTC time>)")
    daily.add_argument("--publish", action="store_true", help="then refresh the ml/ops tables in serving")
    text = "current model, versions and the last decisions"
    sub.add_parser("status", help=text, description=text)
    args = parser.parse_args(argv)
    prepare_command()
    from stackctl.cluster import use_mode
    from stackctl.procs import ServiceError

    try:
        # --publish clears Superset's cache: in cluster mode that is in Redis (its URL filled in here).
        use_mode(None)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    ms = ml_settings(settings)
    if args.command == "daily":
        from ml.flow import run_daily

        run_id = args.run_id or f"manual__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
        result = run_daily(settings, run_id, ms)
        if args.publish:
            from pipelines.publishing import refresh_health_for_dashboards

            result["published"] = refresh_health_for_dashboards(settings, run_id).tables
        print(json.dumps(result, indent=2, default=str))
        return 0
    from ml import registry  # scikit-learn and pandas: a second, so not for --help

    print(f"registry: {ms.registry_dir}\ncurrent: {registry.current_version(ms.registry_dir)}")
    for version in registry.versions(ms.registry_dir):
        print(f"  {version}  AUC {registry.load_metrics(ms.registry_dir, version)['auc']:.4f}")
    for decision in registry.decisions(ms.registry_dir)[-5:]:
        print(f"  decision: {decision['candidate']} promoted={decision['promoted']}: {decision['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
