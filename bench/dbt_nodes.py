"""Where a `dbt build` spent its time: per-node seconds from dbt's own `run_results.json`.

The bench's pipeline worker reads the file the build it just ran wrote (its target path is the
scale's own), so the report can say which models and tests make the daily build cost what it
does, not only its total.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.dbt_cli import run_results_path

__all__ = ["node_seconds", "run_results_path"]


def node_seconds(path: Path) -> dict[str, float]:
    """Seconds per executed node, keyed '<resource type> <name>' (e.g. 'model fct_sessions')."""
    results = json.loads(path.read_text())["results"]
    seconds: dict[str, float] = {}
    for result in results:
        kind, _package, *rest = result["unique_id"].split(".")
        # tests carry a hash suffix in their id; the name is the part before it
        name = rest[0] if kind == "test" else ".".join(rest)
        key = f"{kind} {name}"
        seconds[key] = round(seconds.get(key, 0.0) + float(result.get("execution_time") or 0.0), 3)
    return seconds


def slowest(seconds: dict[str, float], n: int = 8) -> list[tuple[str, float]]:
    """The `n` nodes that took longest, longest first."""
    return sorted(seconds.items(), key=lambda item: (-item[1], item[0]))[:n]


def seconds_by_kind(seconds: dict[str, float]) -> dict[str, float]:
    """Total seconds of models, tests, seeds ... (summed per node, so not the wall time)."""
    totals: dict[str, float] = {}
    for key, value in seconds.items():
        kind = key.split(" ", 1)[0]
        totals[kind] = round(totals.get(kind, 0.0) + value, 3)
    return totals
