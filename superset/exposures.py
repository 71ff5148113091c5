"""dbt exposures generated from the Superset assets: one per dashboard, depending on what it reads.

Every dashboard under `superset/assets/dashboards/` becomes one exposure in
`dbt_project/models/marts/_marts__exposures.yml`, so dbt's lineage (docs graph, `dbt ls -s
+exposure:executive_kpis`) ends at the dashboards people look at, and says which dashboards a model
change reaches (`dbt ls -s fct_daily_revenue_by_segment+ --resource-type exposure`). The file is
written by `python -m stackctl superset exposures` and never edited by hand: a hand-kept list drifts
from the dashboards (charts are added in the UI and exported, datasets change tables).

What a dashboard reads: the datasets of its charts and of its native filters (a filter queries its
dataset for its values). A physical dataset reads its `schema.table_name`; a virtual dataset reads the
tables its SQL names (parsed with sqlglot, CTE names excluded). Each relation maps to the dbt model
that materialises it (schema and alias from the dbt manifest); tables written outside dbt (`ops.*`
by the quality gates and governance, the churn model's `ml.*` aggregates) are listed in the
exposure's `meta.reads_outside_dbt` instead, so a dashboard with no dbt model still has its exposure.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

from core.dbt_cli import run_dbt
from core.settings import Settings
from superset.asset_files import read_assets

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
EXPOSURES_FILE = Path("models") / "marts" / "_marts__exposures.yml"  # inside the dbt project
# The stack's default Superset address (core.settings: SUPERSET_PORT 8088). The committed file uses
# it whatever port this machine runs on, so regenerating it elsewhere changes nothing.
DEFAULT_SUPERSET_URL = "http://127.0.0.1:8088"


@dataclass(frozen=True)
class Owner:
    name: str
    email: str
    maturity: str = "medium"  # dbt's exposure maturity: low | medium | high


# Who answers for each dashboard (by slug). Superset's asset export carries no owner, so it is kept
# here; a dashboard not listed falls back to the project's default owner (dbt_project.yml's meta.owner).
OWNERS: dict[str, Owner] = {
    "executive-kpis": Owner("Finance analytics", "finance-analytics@shop.example", "high"),
    "customers": Owner("Growth analytics", "growth-analytics@shop.example"),
    "experiments": Owner("Product analytics", "product-analytics@shop.example"),
    "marketing": Owner("Marketing analytics", "marketing-analytics@shop.example"),
    "kpi-dictionary": Owner("Analytics", "analytics@shop.example"),
    "churn-predictions": Owner("Product science", "product-science@shop.example"),
    "data-health": Owner("Data engineering", "data-engineering@shop.example"),
    "governance": Owner("Data engineering", "data-engineering@shop.example"),
}
DEFAULT_OWNER = Owner("Analytics", "analytics@shop.example")

HEADER = """\
# GENERATED from superset/assets/ by `make dbt-exposures` (python -m stackctl superset exposures): do not edit.
# One exposure per Superset dashboard; depends_on lists the dbt models its charts and filters read.
# After changing a dashboard, a chart or a dataset (or `make superset-export`), regenerate it and
# commit both; tests/dbt/test_analyst_commands.py fails while this file and the assets disagree.
"""


class ExposureError(RuntimeError):
    """The assets cannot be turned into exposures (a dangling uuid, unparsable dataset SQL)."""


def exposure_name(slug: str, model_names: set[str]) -> str:
    """The exposure's name: the slug in snake_case (`executive-kpis` -> `executive_kpis`).

    A name a model already has gets `_dashboard` appended, so `dbt ls -s <name>` never means both.
    """
    name = slug.strip().lower().replace("-", "_").replace(" ", "_")
    return f"{name}_dashboard" if name in model_names else name


def model_relations(manifest: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(schema, relation name) -> dbt model name, for every model in a dbt manifest."""
    relations = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            relation = node.get("alias") or node["name"]
            relations[(node["schema"].lower(), relation.lower())] = node["name"]
    return relations


def sql_relations(sql: str, default_schema: str) -> set[tuple[str, str]]:
    """The (schema, table) pairs a virtual dataset's SQL reads; unqualified names are in its schema."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ExposureError(f"cannot parse the dataset SQL: {exc}") from None
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found = set()
    for table in tree.find_all(exp.Table):
        name, schema = table.name.lower(), (table.db or "").lower()
        if not name or (not schema and name in ctes):
            continue
        found.add((schema or default_schema.lower(), name))
    return found


def dataset_relations(dataset: Mapping[str, Any]) -> set[tuple[str, str]]:
    schema = str(dataset.get("schema") or "main")
    if dataset.get("sql"):
        return sql_relations(str(dataset["sql"]), schema)
    return {(schema.lower(), str(dataset["table_name"]).lower())}


def dashboard_datasets(dashboard: Mapping[str, Any], assets: Mapping[str, tuple[str, dict]]) -> set[str]:
    """The uuids of the datasets a dashboard queries: its charts' and its native filters'."""
    uuids = set()
    for node in (dashboard.get("position") or {}).values():
        if isinstance(node, dict) and node.get("type") == "CHART":
            chart = assets.get(str(node["meta"]["uuid"]))
            if chart is None:
                raise ExposureError(
                    f"dashboard {dashboard['slug']!r} shows chart {node['meta']['uuid']}, not in assets"
                )
            uuids.add(str(chart[1]["dataset_uuid"]))
    for native_filter in (dashboard.get("metadata") or {}).get("native_filter_configuration") or []:
        for target in native_filter.get("targets") or []:
            if target.get("datasetUuid"):
                uuids.add(str(target["datasetUuid"]))
    missing = sorted(u for u in uuids if u not in assets)
    if missing:
        raise ExposureError(f"dashboard {dashboard['slug']!r} reads datasets {missing}, not in assets")
    return uuids


def dashboard_relations(dashboard: Mapping[str, Any], assets: Mapping[str, tuple[str, dict]]) -> set[tuple[str, str]]:
    """Every (schema, table) a dashboard reads through its datasets."""
    return set().union(*(dataset_relations(assets[u][1]) for u in dashboard_datasets(dashboard, assets)))


def exposures(
    assets: Mapping[str, tuple[str, dict]],
    relations: Mapping[tuple[str, str], str],
    superset_url: str = DEFAULT_SUPERSET_URL,
) -> list[dict[str, Any]]:
    """One dbt exposure per dashboard, ordered by name."""
    model_names = set(relations.values())
    found = []
    for relative, dashboard in assets.values():
        if not relative.startswith("dashboards/"):
            continue
        slug = str(dashboard.get("slug") or "").strip()
        if not slug:
            raise ExposureError(f"{relative} has no slug: the exposure's name and URL come from it")
        read = dashboard_relations(dashboard, assets)
        models = sorted({relations[r] for r in read if r in relations})
        outside = sorted(f"{schema}.{table}" for schema, table in read if (schema, table) not in relations)
        owner = OWNERS.get(slug, DEFAULT_OWNER)
        description = " ".join(str(dashboard.get("description") or dashboard["dashboard_title"]).split())
        exposure: dict[str, Any] = {
            "name": exposure_name(slug, model_names),
            "label": str(dashboard["dashboard_title"]),
            "type": "dashboard",
            "maturity": owner.maturity,
            "url": f"{superset_url.rstrip('/')}/superset/dashboard/{slug}/",
            "description": f"{description} (superset/assets/{relative})",
            "owner": {"name": owner.name, "email": owner.email},
            "depends_on": [f"ref('{model}')" for model in models],
            "meta": {"superset_uuid": str(dashboard["uuid"]), "reads_outside_dbt": outside},
        }
        found.append(exposure)
    names = [e["name"] for e in found]
    if len(names) != len(set(names)):
        raise ExposureError(f"two dashboards give the same exposure name: {sorted(names)}")
    return sorted(found, key=lambda e: e["name"])


def render(items: list[dict[str, Any]]) -> str:
    """The exposures file's text (stable: the same assets give the same bytes)."""
    body = yaml.safe_dump(
        {"version": 2, "exposures": items}, sort_keys=False, width=100, allow_unicode=True, default_flow_style=False
    )
    return HEADER + body


def parsed_manifest(settings: Settings) -> dict[str, Any]:
    """A fresh dbt manifest of the project, parsed in a temporary copy without the exposures file.

    Without it because the committed file may name a model that no longer exists, which fails
    `dbt parse`: regenerating is how that is fixed. A copy, so dbt_project/target (the manifest
    Airflow renders the DAG from) is left alone.
    """
    with tempfile.TemporaryDirectory(prefix="exposures-") as tmp:
        project = Path(tmp) / "dbt_project"
        shutil.copytree(
            settings.dbt_project_dir,
            project,
            # artifacts, logs and any DuckDB file someone left here: parsing needs none of them
            ignore=shutil.ignore_patterns("target*", "logs", "dbt_packages", "*.duckdb", "*.duckdb.wal"),
        )
        (project / EXPOSURES_FILE).unlink(missing_ok=True)
        # Explicit paths: a DBT_TARGET_PATH or DBT_LOG_PATH in the caller's environment would
        # otherwise send the manifest (or the log) somewhere else.
        target = Path(tmp) / "target"
        run_dbt(
            replace(settings, dbt_project_dir=project),
            *("parse", "--quiet", "--target-path", str(target), "--log-path", str(Path(tmp) / "logs")),
            quiet=True,
        )
        return json.loads((target / "manifest.json").read_text())


def write_exposures(
    settings: Settings,
    manifest: Mapping[str, Any] | None = None,
    assets_dir: Path = ASSETS_DIR,
    check: bool = False,
) -> tuple[Path, bool]:
    """Regenerate the exposures file (or, with `check`, only compare); (its path, whether it changed)."""
    relations = model_relations(manifest if manifest is not None else parsed_manifest(settings))
    text = render(exposures(read_assets(assets_dir), relations))
    path = settings.dbt_project_dir / EXPOSURES_FILE
    changed = not path.exists() or path.read_text() != text
    if changed and not check:
        path.write_text(text)
    return path, changed
