"""dbt's manifest without the nodes one engine does not build, for the Airflow graph of that engine.

Cosmos draws `elt_marts` from the manifest. Its `exclude` drops the excluded models, but it adds
back every test that has one selected parent: a test of a DuckDB-only model that also reads a
staging model would get a task waiting for a result the Spark build never produces. So in Spark
mode the graph is drawn from a copy of the manifest without the models tagged `duckdb_only` and
without every test of them (tagged or not), written beside the original and rewritten whenever
the original is newer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def nodes_without(manifest: dict, tag: str) -> set[str]:
    """The ids of the nodes tagged `tag` and of every test that depends on one of them."""
    nodes = manifest["nodes"]
    dropped = {uid for uid, node in nodes.items() if tag in (node.get("tags") or [])}
    for uid, node in nodes.items():
        if node.get("resource_type") == "test" and dropped & set(node.get("depends_on", {}).get("nodes", [])):
            dropped.add(uid)
    return dropped


def manifest_without(manifest_path: Path, tag: str, out_path: Path) -> Path:
    """`out_path`: the manifest without the `tag` nodes and their tests; rewritten only when out of date."""
    if out_path.exists() and out_path.stat().st_mtime >= manifest_path.stat().st_mtime:
        return out_path
    manifest = json.loads(manifest_path.read_text())
    dropped = nodes_without(manifest, tag)
    manifest["nodes"] = {uid: node for uid, node in manifest["nodes"].items() if uid not in dropped}
    for graph in ("parent_map", "child_map"):
        if isinstance(manifest.get(graph), dict):
            manifest[graph] = {
                uid: [other for other in linked if other not in dropped]
                for uid, linked in manifest[graph].items()
                if uid not in dropped
            }
    # written whole, then renamed: a DAG parse running meanwhile reads the old file or the new one
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}")
    partial.write_text(json.dumps(manifest))
    os.replace(partial, out_path)
    return out_path
