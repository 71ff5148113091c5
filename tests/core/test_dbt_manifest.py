"""The Spark-mode graph's manifest: the DuckDB-only models and every test of them are gone, nothing else."""

from __future__ import annotations

import json
import os

from core.dbt_manifest import manifest_without


def _node(kind: str, tags: list[str] | None = None, parents: list[str] | None = None) -> dict:
    return {"resource_type": kind, "tags": tags or [], "depends_on": {"nodes": parents or []}}


def test_tagged_models_and_all_their_tests_are_dropped(tmp_path):
    manifest = {
        "nodes": {
            "model.p.stg": _node("model"),
            "model.p.features": _node("model", ["duckdb_only"], ["model.p.stg"]),
            "test.p.unique_features": _node("test", [], ["model.p.features"]),
            # untagged, two parents, one of them kept: Cosmos would add it back on its own
            "test.p.point_in_time": _node("test", [], ["model.p.features", "model.p.stg"]),
            "test.p.unique_stg": _node("test", [], ["model.p.stg"]),
        },
        "parent_map": {"model.p.features": ["model.p.stg"], "model.p.stg": []},
        "child_map": {"model.p.stg": ["model.p.features", "test.p.unique_stg"], "model.p.features": []},
    }
    source = tmp_path / "manifest.json"
    source.write_text(json.dumps(manifest))

    out = json.loads(manifest_without(source, "duckdb_only", tmp_path / "spark.json").read_text())

    assert sorted(out["nodes"]) == ["model.p.stg", "test.p.unique_stg"]
    assert out["child_map"] == {"model.p.stg": ["test.p.unique_stg"]}
    assert out["parent_map"] == {"model.p.stg": []}


def test_the_copy_is_rewritten_when_the_manifest_is_newer(tmp_path):
    source, copy = tmp_path / "manifest.json", tmp_path / "spark.json"
    source.write_text(json.dumps({"nodes": {"model.p.a": _node("model")}}))
    manifest_without(source, "duckdb_only", copy)
    source.write_text(json.dumps({"nodes": {"model.p.a": _node("model"), "model.p.b": _node("model")}}))
    os.utime(source, (copy.stat().st_mtime + 5, copy.stat().st_mtime + 5))
    assert sorted(json.loads(manifest_without(source, "duckdb_only", copy).read_text())["nodes"]) == [
        "model.p.a",
        "model.p.b",
    ]
