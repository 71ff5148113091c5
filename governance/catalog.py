"""The catalog's checks: is every asset documented and owned, and which assets nobody builds or reads any more.

dbt docs (`make docs`: lineage, descriptions, owners in `meta`, PII tags) is the catalog; this
module keeps it honest from dbt's manifest:

- `completeness` (CI: `tests/governance/test_catalog.py`, `python -m governance catalog check`):
  every model and source has an owner (`meta.owner`) and a description, and every column of a
  mart is described (given the built columns, also the ones the YAML forgot).
- `stale_assets` (the governance_maintenance DAG, daily; `python -m governance catalog stale`):
  models not built successfully for `STALE_AFTER_DAYS` days (default 30), and published marts
  nobody read for as long (`ops.access_log`: Superset charts and SQL Lab). Build history is kept
  in `ops.model_builds`, merged from dbt's `run_results.json` at each run (one file only holds
  its own invocation). Output: `ops.stale_assets` and `var/governance/stale_assets.md`; what
  happens to them next (deprecated, owner told, archived, restorable) is `governance/lifecycle.py`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from governance.settings import stale_after_days

PROJECT = "shop_analytics"

BUILDS_DDL = """
create schema if not exists ops;
create table if not exists ops.model_builds (
    unique_id varchar,       -- model.shop_analytics.<name>
    invocation_id varchar,   -- dbt's id of the run that built it
    completed_at timestamp,  -- UTC
    status varchar           -- success | error | skipped
);
"""
STALE_DDL = """
create schema if not exists ops;
create or replace table ops.stale_assets (
    unique_id varchar,
    name varchar,
    layer varchar,          -- staging | intermediate | marts
    owner varchar,
    last_built_at timestamp,
    last_read_at timestamp, -- published marts only (ops.access_log)
    reason varchar,
    checked_at timestamp
);
"""


@dataclass(frozen=True)
class Finding:
    unique_id: str
    layer: str
    problem: str

    def __str__(self) -> str:
        return f"{self.unique_id} ({self.layer}): {self.problem}"


def load_manifest(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"no dbt manifest at {path}: run `make dbt-parse`")
    return json.loads(path.read_text())


def _meta(node: dict) -> dict:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _layer(node: dict) -> str:
    fqn = node.get("fqn") or []
    return fqn[1] if len(fqn) > 2 else node.get("resource_type", "?")


def models(manifest: dict, project: str = PROJECT) -> list[dict]:
    return [
        node
        for node in manifest["nodes"].values()
        if node.get("resource_type") == "model" and node.get("package_name") == project
    ]


def completeness(
    manifest: dict, actual_columns: dict[str, set[str]] | None = None, project: str = PROJECT
) -> list[Finding]:
    """What the catalog lacks: owners, descriptions, mart column descriptions.

    `actual_columns` (model name -> columns as built, e.g. from the warehouse) also catches mart
    columns the YAML does not list at all.
    """
    findings: list[Finding] = []
    for node in models(manifest, project):
        uid, layer = node["unique_id"], _layer(node)
        if not str(_meta(node).get("owner") or "").strip():
            findings.append(Finding(uid, layer, "no owner (meta.owner)"))
        if not (node.get("description") or "").strip():
            findings.append(Finding(uid, layer, "no description"))
        if layer == "marts":
            documented = {name for name, column in node["columns"].items() if (column.get("description") or "").strip()}
            listed = set(node["columns"]) | set((actual_columns or {}).get(node["name"], set()))
            for column in sorted(listed - documented):
                findings.append(Finding(uid, layer, f"column {column} has no description"))
    for source in manifest.get("sources", {}).values():
        if source.get("package_name") != project:
            continue
        uid = source["unique_id"]
        owner = {**(source.get("source_meta") or {}), **(source.get("meta") or {})}.get("owner")
        if not str(owner or "").strip():
            findings.append(Finding(uid, "source", "no owner (meta.owner)"))
        if not (source.get("description") or "").strip():
            findings.append(Finding(uid, "source", "no description"))
    return findings


# --- stale assets ----------------------------------------------------------------------------------


def _run_results(paths: list[Path]) -> list[tuple[str, str, dt.datetime, str]]:
    rows = []
    for path in paths:
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        invocation = doc.get("metadata", {}).get("invocation_id", path.name)
        for result in doc.get("results", []):
            if not result.get("unique_id", "").startswith("model."):
                continue
            completed = next(
                (t.get("completed_at") for t in result.get("timing", []) if t.get("name") == "execute"), None
            ) or doc.get("metadata", {}).get("generated_at")
            when = dt.datetime.fromisoformat(completed.replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)
            rows.append((result["unique_id"], invocation, when, result.get("status")))
    return rows


@dataclass(frozen=True)
class StaleAsset:
    unique_id: str
    name: str
    layer: str
    owner: str | None
    last_built_at: dt.datetime | None
    last_read_at: dt.datetime | None
    reason: str


def stale_assets(
    settings: Settings,
    manifest: dict,
    run_results: list[Path],
    *,
    now: dt.datetime | None = None,
    days: int | None = None,
    published: frozenset[str] = frozenset(),
) -> list[StaleAsset]:
    """Record the builds in `run_results`, then list models not built (or published marts not read) for `days`.

    Writes `ops.model_builds` (history) and `ops.stale_assets` in the warehouse.
    """
    from core.duckdb_connect import connect_file
    from governance.access_log import by_table_last_read

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    days = stale_after_days() if days is None else days
    cutoff = now - dt.timedelta(days=days)
    reads = by_table_last_read(settings)
    con = connect_file(settings)
    try:
        con.execute(BUILDS_DDL)
        for uid, invocation, when, status in _run_results(run_results):
            con.execute(
                "insert into ops.model_builds select ?, ?, ?, ? where not exists (select 1 from ops.model_builds "
                "where unique_id = ? and invocation_id = ?)",
                [uid, invocation, when, status, uid, invocation],
            )
        built = dict(
            con.execute(
                "select unique_id, max(completed_at) from ops.model_builds where status = 'success' group by 1"
            ).fetchall()
        )
        out: list[StaleAsset] = []
        for node in sorted(models(manifest), key=lambda n: n["unique_id"]):
            uid, name, layer = node["unique_id"], node.get("alias") or node["name"], _layer(node)
            last_built = built.get(uid)
            last_read = reads.get(f"marts.{name}") if layer == "marts" else None
            reasons = []
            if last_built is None:
                reasons.append("never built (no successful run recorded)")
            elif last_built < cutoff:
                reasons.append(f"not built for {(now - last_built).days} days")
            if layer == "marts" and name in published and (last_read is None or last_read < cutoff):
                reasons.append(f"not read on a dashboard or in SQL Lab for {days}+ days")
            if reasons:
                owner = _meta(node).get("owner")
                out.append(StaleAsset(uid, name, layer, owner, last_built, last_read, "; ".join(reasons)))
        con.execute(STALE_DDL)
        for asset in out:
            con.execute(
                "insert into ops.stale_assets values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    asset.unique_id,
                    asset.name,
                    asset.layer,
                    asset.owner,
                    asset.last_built_at,
                    asset.last_read_at,
                    asset.reason,
                    now,
                ],
            )
    finally:
        con.close()
    return out


def stale_report_markdown(assets: list[StaleAsset], days: int, now: dt.datetime) -> str:
    lines = [
        f"# Stale assets ({now:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Models not built successfully, or published marts not read, for {days} days "
        "(`STALE_AFTER_DAYS`). Ask the owner whether to fix, keep or delete each one.",
        "",
    ]
    if not assets:
        return "\n".join([*lines, "Nothing is stale.", ""])
    lines += ["| model | layer | owner | last built | last read | why |", "| --- | --- | --- | --- | --- | --- |"]
    for a in assets:
        built = f"{a.last_built_at:%Y-%m-%d}" if a.last_built_at else "never"
        read = f"{a.last_read_at:%Y-%m-%d}" if a.last_read_at else "-"
        lines.append(f"| {a.name} | {a.layer} | {a.owner or '-'} | {built} | {read} | {a.reason} |")
    return "\n".join([*lines, ""])


def write_stale_report(settings: Settings, *, now: dt.datetime | None = None, days: int | None = None) -> Path:
    """The maintenance DAG's step: stale assets into `ops.stale_assets` and `var/governance/stale_assets.md`."""
    from governance.settings import governance_dir
    from serving.publish import dbt_manifest_path, unpublished_marts

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    days = stale_after_days() if days is None else days
    manifest_path = dbt_manifest_path(settings)
    manifest = load_manifest(manifest_path)
    marts = {n.get("alias") or n["name"] for n in models(manifest) if _layer(n) == "marts"}
    published = frozenset(marts - unpublished_marts(manifest_path))
    run_results = [manifest_path.with_name("run_results.json")]
    assets = stale_assets(settings, manifest, run_results, now=now, days=days, published=published)
    path = governance_dir(settings) / "stale_assets.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stale_report_markdown(assets, days, now))
    return path
