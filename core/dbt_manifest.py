"""dbt's manifest as the stack reads it: where the last parse or build wrote it; which marts
publish serves; and the manifest without the nodes one engine does not build, for the Airflow
graph of that engine.

Publish serves every model of the marts schema but those marked `meta.publish: false`; gate 2
and publish both read that here, so the marts gate 2 fingerprints are the marts publish copies
(quality.fingerprint).

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the DAG files import this module when they are parsed: nothing more than it needs
    from core.settings import Settings


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


class ManifestMissing(FileNotFoundError):
    """No dbt manifest where the stack looks for it."""


def dbt_manifest_path(settings: Settings) -> Path:
    """dbt's manifest as the last parse/build wrote it (DBT_TARGET_PATH, default `target`)."""
    target = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    return (target if target.is_absolute() else settings.dbt_project_dir / target) / "manifest.json"


def marts_models(manifest_path: Path) -> dict[str, bool]:
    """Every model of the marts schema in dbt's manifest, and whether publish serves it (`meta.publish`)."""
    if not manifest_path.exists():
        raise ManifestMissing(
            f"no dbt manifest at {manifest_path}: publish needs it to know which marts stay in the "
            "warehouse (meta.publish: false); run `make dbt-parse`"
        )
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return {
        node.get("alias") or node["name"]: (node.get("config", {}).get("meta") or node.get("meta") or {}).get("publish")
        is not False
        for node in nodes
        if node.get("resource_type") == "model"
        and (node.get("schema") == "marts" or node.get("fqn", [None, None])[1:2] == ["marts"])
    }


def unpublished_marts(manifest_path: Path) -> frozenset[str]:
    """Names of the marts models whose `meta.publish` is false in dbt's manifest."""
    return frozenset(name for name, served in marts_models(manifest_path).items() if not served)


def unserved_marts(settings: Settings) -> frozenset[str]:
    """The marts publish leaves in the warehouse, by the manifest publish reads (`dbt_manifest_path`);
    none without a manifest (publish then refuses anyway)."""
    manifest = dbt_manifest_path(settings)
    return unpublished_marts(manifest) if manifest.exists() else frozenset()


def published_marts(manifest_path: Path) -> list[str]:
    """Names of the marts models publish serves (all but `meta.publish: false`), sorted."""
    return sorted(name for name, served in marts_models(manifest_path).items() if served)
