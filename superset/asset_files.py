"""Superset assets as reviewable YAML: turn an export bundle into the files under `superset/assets/`.

`provision.export_assets()` downloads `GET /api/v1/assets/export/` (everything in the running
Superset) and hands the YAML documents to `write_assets()` here, which writes them back so that a
UI edit shows up in git as a small, meaningful diff:

- **no environment ids**: chart params lose `datasource`/`slice_id`/`dashboards`, saved queries lose
  their datasource ids and the copy of the form data; dashboard chart ids (`meta.chartId`, filter
  scopes, cross-filter configuration) are renumbered 1..n in layout order (they are only local
  handles: the importer maps them through each CHART node's `meta.uuid`), derived state the UI
  recomputes (`chartsInScope`, shared label colours) is dropped;
- **no secrets**: password-bearing keys are removed, and the run fails if any secret from the
  environment would be written;
- **templated**: values such as the serving file's path are put back as `${SERVING_PATH}`;
- **stable**: a file is matched to its object by UUID (a new object gets a file named after its
  title), and it is only rewritten when its content changed *semantically*, so hand-written files
  keep their formatting and comments until someone really edits them. A rewritten file keeps its
  leading comment block; metrics and columns are sorted by name and keys in a fixed order.

The same normalisation makes the round-trip test possible: import the files, export, and nothing
may change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("databases", "datasets", "charts", "dashboards", "queries")

# Top-level key order per kind (keys not listed follow, sorted, before `uuid`).
_KEY_ORDER: dict[str, tuple[str, ...]] = {
    "databases": ("database_name", "sqlalchemy_uri"),
    "datasets": ("table_name", "schema", "catalog", "sql", "description", "main_dttm_col"),
    "charts": ("slice_name", "description", "viz_type", "params", "query_context"),
    "dashboards": ("dashboard_title", "description", "slug", "published"),
    "queries": ("label", "description", "catalog", "schema", "sql"),
}
_TRAILING_KEYS = ("uuid", "database_uuid", "dataset_uuid", "version", "metrics", "columns", "metadata", "position")

# Keys that may carry credentials; never written.
SECRET_KEYS = {"password", "encrypted_extra", "masked_encrypted_extra", "server_cert", "ssh_tunnel"}
# Chart params that hold this instance's ids.
_CHART_PARAM_IDS = {"datasource", "slice_id", "dashboards", "dashboardId", "url_params"}
# Dashboard metadata the UI derives from the layout and the colour scheme on every save.
_DERIVED_METADATA = {"shared_label_colors", "color_scheme_domain", "map_label_colors", "positions"}


class AssetExportError(RuntimeError):
    """The export cannot be written safely (a secret would leak, a file is ambiguous)."""


# --- reading and writing files --------------------------------------------------------------------


def kind_of(relative: str) -> str | None:
    """`charts/x.yaml` -> "charts"; None for metadata.yaml and other files."""
    head = relative.split("/", 1)[0]
    return head if head in KINDS and "/" in relative else None


def split_header(text: str) -> tuple[str, str]:
    """(leading comment block, rest): the comment lines a rewrite keeps."""
    lines = text.splitlines(keepends=True)
    count = 0
    while count < len(lines) and lines[count].startswith("#"):
        count += 1
    return "".join(lines[:count]), "".join(lines[count:])


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def canonical(kind: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with top-level keys in the fixed order for `kind` and nested keys sorted."""
    first = [key for key in _KEY_ORDER.get(kind, ()) if key in doc]
    last = [key for key in _TRAILING_KEYS if key in doc and key not in first]
    middle = sorted(key for key in doc if key not in first and key not in last)
    return {key: _sorted(doc[key]) for key in [*first, *middle, *last]}


def dump(kind: str, doc: Mapping[str, Any], header: str = "") -> str:
    body = yaml.dump(canonical(kind, doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return header + body


# --- normalisation --------------------------------------------------------------------------------


def retemplate(value: Any, values: Mapping[str, str]) -> Any:
    """Replace each template value (e.g. the serving path) by its `${NAME}` placeholder."""
    if isinstance(value, str):
        for name, literal in sorted(values.items(), key=lambda item: -len(item[1])):
            if literal:
                value = value.replace(literal, f"${{{name}}}")
        return value
    if isinstance(value, dict):
        return {key: retemplate(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [retemplate(item, values) for item in value]
    return value


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_secrets(item) for key, item in value.items() if key not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _query_context(text: str | None) -> str | None:
    if not text:
        return text
    context = json.loads(text)
    # The importer fills in the datasource; form_data repeats `params` (with ids).
    context.pop("datasource", None)
    context.pop("form_data", None)
    for query in context.get("queries", []):
        query.pop("datasource", None)
    return json.dumps(context, indent=2, sort_keys=True)


def _chart(doc: dict[str, Any]) -> dict[str, Any]:
    params = doc.get("params")
    if isinstance(params, str):
        params = json.loads(params) if params else {}
    if isinstance(params, dict):
        params = {key: value for key, value in params.items() if key not in _CHART_PARAM_IDS}
        if params.get("annotation_layers") == []:
            # The importer always sets it (keeping only formula layers): empty says nothing.
            del params["annotation_layers"]
        doc["params"] = params
    doc["query_context"] = _query_context(doc.get("query_context"))
    return doc


def _dataset(doc: dict[str, Any]) -> dict[str, Any]:
    for key, name in (("metrics", "metric_name"), ("columns", "column_name")):
        if isinstance(doc.get(key), list):
            doc[key] = sorted(doc[key], key=lambda item: str(item.get(name)))
    return doc


def _layout_order(position: dict[str, Any]) -> list[str]:
    """CHART node ids in layout order (depth first from ROOT_ID), unreachable ones after, by id."""
    seen: list[str] = []
    stack = ["ROOT_ID"]
    visited: set[str] = set()
    while stack:
        node_id = stack.pop()
        node = position.get(node_id)
        if node_id in visited or not isinstance(node, dict):
            continue
        visited.add(node_id)
        if node.get("type") == "CHART":
            seen.append(node_id)
        stack.extend(reversed(node.get("children", [])))
    charts = [key for key, node in position.items() if isinstance(node, dict) and node.get("type") == "CHART"]
    return seen + sorted(set(charts) - set(seen))


def _renumber(ids: Iterable[Any], id_map: dict[int, int]) -> list[int]:
    return [id_map[int(old)] for old in ids if int(old) in id_map]


def _dashboard(doc: dict[str, Any]) -> dict[str, Any]:
    position = doc.get("position") or {}
    id_map: dict[int, int] = {}
    for number, node_id in enumerate(_layout_order(position), start=1):
        meta = position[node_id].setdefault("meta", {})
        if meta.get("chartId") is not None:
            id_map[int(meta["chartId"])] = number
        meta["chartId"] = number
    metadata = doc.get("metadata") or {}
    for key in _DERIVED_METADATA:
        metadata.pop(key, None)
    if "timed_refresh_immune_slices" in metadata:
        metadata["timed_refresh_immune_slices"] = _renumber(metadata["timed_refresh_immune_slices"], id_map)
    if isinstance(metadata.get("expanded_slices"), dict):
        metadata["expanded_slices"] = {
            str(id_map[int(old)]): value for old, value in metadata["expanded_slices"].items() if int(old) in id_map
        }
    if isinstance(metadata.get("filter_scopes"), dict):
        scopes = {}
        for old, columns in metadata["filter_scopes"].items():
            if int(old) in id_map:
                for attributes in columns.values():
                    attributes["immune"] = _renumber(attributes.get("immune", []), id_map)
                scopes[str(id_map[int(old)])] = columns
        metadata["filter_scopes"] = scopes
    if metadata.get("default_filters") in ("", "{}"):
        # Superset drops the empty legacy filter state on import; keep files equal to exports.
        metadata.pop("default_filters")
    elif isinstance(metadata.get("default_filters"), str):
        filters = json.loads(metadata["default_filters"])
        metadata["default_filters"] = json.dumps(
            {str(id_map[int(old)]): value for old, value in filters.items() if int(old) in id_map}
        )
    for native_filter in metadata.get("native_filter_configuration", []):
        native_filter.pop("chartsInScope", None)
        native_filter.pop("tabsInScope", None)
        scope = native_filter.get("scope") or {}
        if scope.get("excluded"):
            scope["excluded"] = _renumber(scope["excluded"], id_map)
    global_config = metadata.get("global_chart_configuration") or {}
    global_config.pop("chartsInScope", None)
    if (global_config.get("scope") or {}).get("excluded"):
        global_config["scope"]["excluded"] = _renumber(global_config["scope"]["excluded"], id_map)
    if isinstance(metadata.get("chart_configuration"), dict):
        renumbered = {}
        for old, config in metadata["chart_configuration"].items():
            if not str(old).isdigit() or int(old) not in id_map:
                continue
            new = id_map[int(old)]
            if isinstance(config, dict):
                config["id"] = new
                cross = config.get("crossFilters") or {}
                cross.pop("chartsInScope", None)
                if (cross.get("scope") or {}).get("excluded"):
                    cross["scope"]["excluded"] = _renumber(cross["scope"]["excluded"], id_map)
            renumbered[str(new)] = config
        metadata["chart_configuration"] = renumbered
    if doc.get("theme_uuid") is None:
        doc.pop("theme_uuid", None)
    return doc


def _query(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("db_id", None)
    return doc


_NORMALISERS = {"charts": _chart, "datasets": _dataset, "dashboards": _dashboard, "queries": _query}


def normalise(kind: str, doc: Mapping[str, Any], template_values: Mapping[str, str]) -> dict[str, Any]:
    """One exported (or committed) document as it belongs in git."""
    clean = json.loads(json.dumps(doc))  # a deep copy with plain types
    clean = _without_secrets(clean)
    clean = _NORMALISERS.get(kind, lambda d: d)(clean)
    if not clean.get("tags"):
        clean.pop("tags", None)
    return retemplate(clean, template_values)


def comparable(value: Any) -> Any:
    """What two documents must agree on to be the same asset: absent and null keys are equal."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


# --- writing an export ----------------------------------------------------------------------------


@dataclass
class ExportResult:
    """Relative paths per outcome; `removed` lists files whose object is no longer in Superset."""

    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "untitled"


def new_file_name(kind: str, doc: Mapping[str, Any], database_names: Mapping[str, str]) -> str:
    """Where a new object's file goes (existing objects keep their file, matched by UUID)."""
    if kind == "datasets":
        database = database_names.get(str(doc.get("database_uuid")), "unknown")
        return f"datasets/{_slug(database)}/{doc['table_name']}.yaml"
    title = {
        "databases": "database_name",
        "charts": "slice_name",
        "dashboards": "dashboard_title",
        "queries": "label",
    }[kind]
    return f"{kind}/{_slug(str(doc.get(title) or doc.get('uuid')))}.yaml"


def read_assets(assets_dir: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """uuid -> (relative path, document) for every asset file under `assets_dir`."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(assets_dir.rglob("*.yaml")):
        relative = path.relative_to(assets_dir).as_posix()
        if kind_of(relative) is None:
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        uuid = str(doc.get("uuid"))
        if uuid in found:
            raise AssetExportError(f"{relative} and {found[uuid][0]} have the same uuid {uuid}")
        found[uuid] = (relative, doc)
    return found


def _check_no_secrets(text: str, secrets: Iterable[str], where: str) -> None:
    for secret in secrets:
        if secret and len(secret) >= 6 and secret in text:
            raise AssetExportError(f"{where} would contain a secret from the environment; nothing was written")


def write_assets(
    exported: Mapping[str, Mapping[str, Any]],
    assets_dir: Path,
    template_values: Mapping[str, str],
    secrets: Iterable[str] = (),
    *,
    prune: bool = False,
) -> ExportResult:
    """Write the exported documents (bundle path -> YAML document) into `assets_dir`.

    Files are only written when an object is new or its content changed; with `prune`, files of
    objects that are no longer in Superset are deleted (otherwise only reported).
    """
    secrets = [secret for secret in secrets if secret]
    existing = read_assets(assets_dir)
    result = ExportResult()
    documents: list[tuple[str, dict[str, Any]]] = []
    for name, doc in exported.items():
        kind = kind_of(name)
        if kind is not None:
            documents.append((kind, normalise(kind, doc, template_values)))
    database_names = {str(doc["uuid"]): str(doc.get("database_name")) for kind, doc in documents if kind == "databases"}
    pending: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for kind, doc in documents:
        uuid = str(doc.get("uuid"))
        seen.add(uuid)
        if uuid in existing:
            relative, current = existing[uuid]
            if comparable(normalise(kind, current, template_values)) == comparable(doc):
                result.unchanged.append(relative)
                continue
            header, _ = split_header((assets_dir / relative).read_text())
            result.changed.append(relative)
        else:
            relative, header = new_file_name(kind, doc, database_names), ""
            if (assets_dir / relative).exists():
                relative = relative.removesuffix(".yaml") + f"_{uuid[:8]}.yaml"
            result.added.append(relative)
        text = dump(kind, doc, header)
        _check_no_secrets(text, secrets, relative)
        pending.append((assets_dir / relative, text))
    # Only write once every document passed the checks: an export is all or nothing.
    for path, text in pending:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for uuid, (relative, _) in sorted(existing.items(), key=lambda item: item[1][0]):
        if uuid not in seen:
            result.removed.append(relative)
            if prune:
                (assets_dir / relative).unlink()
    return result
