"""Superset's side of retiring a stale model: a warning where users look, the archive, and the way back.

`governance/lifecycle.py` decides which model is deprecated, archived or restored; it reaches
Superset only through `SupersetPresentation` (this module), which the governance_maintenance DAG
and `python -m stackctl governance catalog ...` hand it (governance sits below superset).

- `warn`: the dataset reading the model gets `extra.warning_markdown` (Superset shows it as a
  warning icon with the text in the dataset list, in Explore and on every chart built on it), and
  each of its charts gets the same text at the top of its description.
- `archive`: what reads the model (its datasets, their charts, and every dashboard showing one of
  those charts or filtering on the dataset: nobody opened them either, which is what made the
  model stale) is exported from Superset's own export API into `<folder>/superset.zip` (the
  import bundle format of `/api/v1/assets/import/`), then deleted. Their files under
  `superset/assets/` move into `<folder>/assets/` so the next `superset up` does not bring them
  back, and dbt's exposures are regenerated from the assets that remain (an exposure that refs a
  disabled model fails `dbt parse`).
- `restore`: the bundle is imported again (overwriting by uuid), the files move back, the warnings
  are removed, the exposures regenerated.

What is matched is the dataset's table: a physical dataset on the model's table, or a virtual one
whose SQL names it (the same parsing as the exposures).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from core.settings import Settings
from governance import lifecycle
from governance.lifecycle import PresentationUnavailable
from superset import exposures, provision
from superset.asset_files import read_assets

# Marks the text this module put on a chart's description, so it can be taken off again exactly.
WARNING_START = "⚠️ "
WARNING_END = "\n\n---\n\n"
BUNDLE = "superset.zip"
TABLES = "tables.json"
_METADATA = {"version": "1.0.0", "type": "assets"}


@dataclass(frozen=True)
class Affected:
    """uuid -> exported document, per kind, of everything reading the given tables."""

    datasets: dict[str, dict]
    charts: dict[str, dict]
    dashboards: dict[str, dict]


def _by_uuid(documents: dict[str, dict]) -> dict[str, tuple[str, dict]]:
    return {str(doc.get("uuid")): (relative, doc) for relative, doc in documents.items() if doc.get("uuid")}


def affected(documents: dict[str, dict], tables: Sequence[str]) -> Affected:
    """What in an export bundle (relative path -> document) reads any of `tables`."""
    wanted = {t.lower() for t in tables}
    datasets = {
        str(doc["uuid"]): doc
        for relative, doc in documents.items()
        if relative.startswith("datasets/") and {name for _, name in exposures.dataset_relations(doc)} & wanted
    }
    charts = {
        str(doc["uuid"]): doc
        for relative, doc in documents.items()
        if relative.startswith("charts/") and str(doc.get("dataset_uuid")) in datasets
    }
    assets = _by_uuid(documents)
    dashboards = {
        str(doc["uuid"]): doc
        for relative, doc in documents.items()
        if relative.startswith("dashboards/") and exposures.dashboard_datasets(doc, assets) & set(datasets)
    }
    return Affected(datasets, charts, dashboards)


def _ids(client: provision.SupersetClient, kind: str) -> dict[str, int]:
    """uuid -> id of every `kind` (chart, dashboard, dataset) in Superset."""
    found: dict[str, int] = {}
    page = 0
    while True:
        result = client.get(f"/api/v1/{kind}/", q=f"(columns:!(id,uuid),page:{page},page_size:100)")["result"]
        found.update({str(item["uuid"]): int(item["id"]) for item in result})
        if len(result) < 100:
            return found
        page += 1


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 400:
        raise provision.ProvisionError(f"{what} failed (HTTP {response.status_code}): {response.text[:500]}")


def with_warning(description: str | None, message: str) -> str:
    return f"{WARNING_START}{message}{WARNING_END}{without_warning(description)}"


def without_warning(description: str | None) -> str:
    text = description or ""
    if text.startswith(WARNING_START) and WARNING_END in text:
        return text.split(WARNING_END, 1)[1]
    return text


def set_warnings(client: provision.SupersetClient, found: Affected, message: str | None) -> dict[str, int]:
    """Put (or, with None, take off) the warning on the datasets and charts; how many changed."""
    changed = 0
    dataset_ids, chart_ids = _ids(client, "dataset"), _ids(client, "chart")
    for uuid in found.datasets:
        if uuid not in dataset_ids:
            continue
        current = client.get(f"/api/v1/dataset/{dataset_ids[uuid]}")["result"]
        extra = json.loads(current.get("extra") or "{}")
        if extra.get("warning_markdown") == message or (message is None and "warning_markdown" not in extra):
            continue
        if message is None:
            extra.pop("warning_markdown", None)
        else:
            extra["warning_markdown"] = message
        _check(client.put(f"/api/v1/dataset/{dataset_ids[uuid]}", json={"extra": json.dumps(extra)}), "dataset warning")
        changed += 1
    for uuid in found.charts:
        if uuid not in chart_ids:
            continue
        current = client.get(f"/api/v1/chart/{chart_ids[uuid]}")["result"].get("description")
        wanted = with_warning(current, message) if message else without_warning(current)
        if wanted == (current or ""):
            continue
        _check(client.put(f"/api/v1/chart/{chart_ids[uuid]}", json={"description": wanted or None}), "chart warning")
        changed += 1
    return {"datasets": len(found.datasets), "charts": len(found.charts), "changed": changed}


def _bundle(documents: dict[str, dict], found: Affected) -> bytes:
    """The import bundle of the affected objects and everything their import needs.

    Superset's import resolves a dashboard's charts and filter datasets inside the bundle, so the
    other charts of an archived dashboard and the datasets they (and its filters) read go in too;
    a restore overwrites those by uuid with their state on the archive day.
    """
    assets = _by_uuid(documents)
    charts = set(found.charts)
    datasets = set(found.datasets)
    for dashboard in found.dashboards.values():
        for node in (dashboard.get("position") or {}).values():
            if isinstance(node, dict) and node.get("type") == "CHART":
                charts.add(str(node["meta"]["uuid"]))
        datasets |= exposures.dashboard_datasets(dashboard, assets)
    datasets |= {str(assets[uuid][1]["dataset_uuid"]) for uuid in charts if uuid in assets}
    databases = {str(assets[uuid][1]["database_uuid"]) for uuid in datasets if uuid in assets}
    keep = charts | datasets | databases | set(found.dashboards)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("assets/metadata.yaml", yaml.safe_dump(_METADATA))
        for relative, doc in sorted(documents.items()):
            if str(doc.get("uuid")) in keep:
                bundle.writestr(f"assets/{relative}", yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return buffer.getvalue()


class SupersetPresentation:
    """`governance.lifecycle.Presentation` for the stack's Superset and its `superset/assets/` files."""

    def __init__(self, settings: Settings, assets_dir: Path = provision.ASSETS_DIR) -> None:
        self.settings = settings
        self.assets_dir = assets_dir

    def _client(self) -> provision.SupersetClient:
        try:
            return provision.SupersetClient(provision.base_url(self.settings), provision.admin_credentials())
        except requests.ConnectionError as exc:
            raise PresentationUnavailable(f"Superset does not answer at {provision.base_url(self.settings)}") from exc
        except provision.ProvisionError as exc:  # no admin login in the environment: not set up here
            raise PresentationUnavailable(str(exc)) from exc

    def warn(self, tables: Sequence[str], message: str | None) -> dict[str, int]:
        client = self._client()
        return set_warnings(client, affected(provision.export_bundle(client), tables), message)

    def archive(self, tables: Sequence[str], folder: Path) -> dict[str, Any]:
        client = self._client()
        documents = provision.export_bundle(client)
        found = affected(documents, tables)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BUNDLE).write_bytes(_bundle(documents, found))
        (folder / TABLES).write_text(json.dumps(sorted(tables)) + "\n")  # whose warnings restore takes off
        # Dashboards first (they hold the charts), then charts, then the dataset they all read.
        removed: dict[str, list[str]] = {}
        for kind, items, title in (
            ("dashboard", found.dashboards, "dashboard_title"),
            ("chart", found.charts, "slice_name"),
            ("dataset", found.datasets, "table_name"),
        ):
            ids = _ids(client, kind)
            for uuid, doc in items.items():
                if uuid in ids:
                    _check(
                        client.session.delete(f"{client.url}/api/v1/{kind}/{ids[uuid]}", timeout=client.timeout),
                        f"deleting {kind} {doc.get(title)!r}",
                    )
            removed[f"{kind}s"] = sorted(str(doc.get(title)) for doc in items.values())
        moved = self._move_files(set(found.datasets) | set(found.charts) | set(found.dashboards), folder)
        self._regenerate_exposures()
        return {
            "bundle": BUNDLE,
            "exported": {k: len(v) for k, v in removed.items()},
            "removed": removed,
            "asset_files": moved,
        }

    def restore(self, folder: Path) -> dict[str, Any]:
        client = self._client()
        bundle = (folder / BUNDLE).read_bytes()
        response = client.post("/api/v1/assets/import/", files={"bundle": (BUNDLE, bundle, "application/zip")})
        _check(response, "re-importing the archived assets")
        documents: dict[str, dict] = {}
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            for name in archive.namelist():
                relative = name.split("/", 1)[1]
                if relative != "metadata.yaml":
                    documents[relative] = yaml.safe_load(archive.read(name)) or {}
        set_warnings(client, affected(documents, json.loads((folder / TABLES).read_text())), None)
        moved = self._move_back(folder)
        self._regenerate_exposures()
        return {"imported": sum(1 for r in documents if not r.startswith("databases/")), "asset_files": moved}

    # --- superset/assets/ and dbt's exposures, kept in step with what Superset holds

    def _move_files(self, uuids: set[str], folder: Path) -> list[str]:
        if not self.assets_dir.is_dir():
            return []
        moved = []
        for uuid, (relative, _) in read_assets(self.assets_dir).items():
            if uuid in uuids:
                target = folder / "assets" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(self.assets_dir / relative, target)
                moved.append(relative)
        return sorted(moved)

    def _move_back(self, folder: Path) -> list[str]:
        source = folder / "assets"
        moved = []
        for path in sorted(source.rglob("*.yaml")) if source.is_dir() else []:
            relative = path.relative_to(source).as_posix()
            target = self.assets_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)  # the archive keeps its copy
            moved.append(relative)
        return moved

    def _regenerate_exposures(self) -> None:
        if (self.settings.dbt_project_dir / exposures.EXPOSURES_FILE).exists():
            exposures.write_exposures(self.settings, assets_dir=self.assets_dir)


# --- what the DAG and the CLI run: governance's steps with this Superset ----------------------------


def _manifest(settings: Settings) -> dict:
    from governance.catalog import load_manifest
    from serving.publish import dbt_manifest_path

    return load_manifest(dbt_manifest_path(settings))


def daily(settings: Settings, today: dt.date | None = None) -> dict[str, list[str]]:
    """Deprecate today's stale models and archive those due (the governance_maintenance DAG's step)."""
    return lifecycle.run_daily(settings, _manifest(settings), SupersetPresentation(settings), today=today).as_dict()


def deprecate(settings: Settings, today: dt.date | None = None) -> dict[str, list[str]]:
    return lifecycle.deprecate(settings, _manifest(settings), SupersetPresentation(settings), today=today).as_dict()


def archive(settings: Settings, today: dt.date | None = None) -> dict[str, list[str]]:
    return lifecycle.archive_due(settings, _manifest(settings), SupersetPresentation(settings), today=today).as_dict()


def restore(settings: Settings, archive_id: str) -> dict[str, Any]:
    return lifecycle.restore(settings, archive_id, SupersetPresentation(settings))
