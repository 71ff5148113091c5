"""CLI: `python -m ml daily [--run-id ID] [--publish]` runs drift check, retraining and scoring once;
`python -m ml status` prints the registry (current model, versions, last decisions)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from core.command import prepare_command
from core.settings import get_settings
from ml import registry
from ml.settings import ml_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    daily = sub.add_parser("daily", help="drift check -> retrain if needed -> score")
    daily.add_argument("--run-id", default=None)
    daily.add_argument("--publish", action="store_true", help="then refresh the ml/ops tables in serving")
    sub.add_parser("status", help="current model, versions and the last decisions")
    args = parser.parse_args(argv)
    prepare_command()
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
    print(f"registry: {ms.registry_dir}\ncurrent: {registry.current_version(ms.registry_dir)}")
    for version in registry.versions(ms.registry_dir):
        print(f"  {version}  AUC {registry.load_metrics(ms.registry_dir, version)['auc']:.4f}")
    for decision in registry.decisions(ms.registry_dir)[-5:]:
        print(f"  decision: {decision['candidate']} promoted={decision['promoted']}: {decision['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
