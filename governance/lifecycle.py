"""Stale models past the report: deprecated where users look, owner told, archived after a grace period, restorable.

The daily governance_maintenance DAG runs this after the stale report (`catalog.write_stale_report`);
`python -m stackctl governance catalog deprecate|archive|restore` runs each step by hand.

1. `deprecate`: every model of today's stale list (`ops.stale_assets`) gets, in the properties YAML
   that already defines it (where an analyst reads it, and one small hunk in `git diff`), dbt's
   `deprecation_date` (the day it will be archived: dbt warns every model that refs it, and the
   manifest carries it) and `meta.deprecated` (since, why, archive day; in the model's `meta`,
   top-level or under `config`, wherever it already is: docs and `dbt ls --output json` show it).
   Superset shows a warning on its dataset and charts; its owner (`meta.owner`) is alerted through
   `core.alerts`, and the notice is added to `stale_assets.md`. A deprecated model that is no
   longer stale (fixed: built, or read, again) has its deprecation lifted on the next run.
2. `archive`, once that day has come (`STALE_GRACE_DAYS` after): the dashboards, charts and
   dataset that read it are exported to `var/governance/archive/<date>/<model>/` and removed from
   Superset, then `config.enabled: false` is written beside the deprecation (dbt no longer builds,
   lists or documents it).
3. `restore <archive id>`: the model is enabled again and the exported assets re-imported.

Every step is one audit entry (`governance.audit`). Superset is reached through the
`Presentation` the caller passes (`superset/deprecation.py`): governance sits below superset
(tests/core/test_layers.py). Without one, only dbt's side is done, and archiving waits: a model
is never disabled while dashboards that read it may still exist.

Left alone on purpose: a model stale only because it was never built, or first built less than
`STALE_AFTER_DAYS` ago (it may be new: nobody could have read it for that long), one whose
YAML says `meta.keep: true` (its owner's answer to the notice), one restored less than
`STALE_AFTER_DAYS` ago, and everything on a day when over half the models are stale (that is a
stopped pipeline, not abandoned models: one alert says so).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from core.settings import Settings
from governance import audit, catalog
from governance.settings import archive_dir, governance_dir, stale_after_days, stale_grace_days

ACTOR = "governance_maintenance"
# Children that keep a model from being disabled: dbt fails to parse while they ref it. Tests and
# unit tests are disabled with the model; exposures are regenerated from the remaining dashboards.
_BLOCKING_CHILDREN = ("model.", "semantic_model.", "metric.", "saved_query.", "snapshot.", "seed.")


class LifecycleError(RuntimeError):
    """A request the catalog cannot carry out (unknown archive, model not in its YAML); the message says why."""


class PresentationUnavailable(RuntimeError):
    """The BI tool cannot be reached now; archiving waits for the next run."""


class Presentation(Protocol):
    """Where users see a model (Superset): warn about it, archive what reads it, bring it back."""

    def warn(self, tables: Sequence[str], message: str | None) -> dict[str, int]:
        """Show `message` on the datasets (and their charts) reading `tables` (None: take it off); idempotent."""
        ...

    def archive(self, tables: Sequence[str], folder: Path) -> dict[str, Any]:
        """Export what reads `tables` into `folder`, then remove it; what was exported and removed."""
        ...

    def restore(self, folder: Path) -> dict[str, Any]:
        """Re-import what `archive` wrote into `folder`, without the warnings."""
        ...


@dataclass
class DailyResult:
    deprecated: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # due, not archived (and why)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"deprecated": self.deprecated, "archived": self.archived, "waiting": self.waiting, "notes": self.notes}


# --- the model's properties YAML -------------------------------------------------------------------


def _round_trip():
    # ruamel keeps comments, quoting and layout: the edit is the only diff in the file.
    from ruamel.yaml import YAML

    handler = YAML()
    handler.preserve_quotes = True
    handler.width = 4096
    handler.indent(mapping=2, sequence=4, offset=2)
    return handler


@contextmanager
def _model_entry(path: Path, name: str) -> Iterator[Any]:
    """The model's mapping in `path`, written back (atomically) when the block ends without error."""
    handler = _round_trip()
    document = handler.load(path.read_text())
    entry = next((m for m in (document or {}).get("models") or [] if m.get("name") == name), None)
    if entry is None:
        raise LifecycleError(f"{path}: no model {name!r} in it")
    yield entry
    buffer = io.StringIO()
    handler.dump(document, buffer)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, path)


def _config(entry: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap

    if entry.get("config") is None:
        # Right after the name and description, where a reader of the file looks first.
        entry.insert(min(len(entry), 2), "config", CommentedMap())
    return entry["config"]


def _meta(entry: Any) -> Any:
    """The model's meta mapping: where it already is (dbt refuses `meta` both on top and under `config`)."""
    from ruamel.yaml.comments import CommentedMap

    if entry.get("meta") is not None:
        return entry["meta"]
    config = _config(entry)
    if config.get("meta") is None:
        config["meta"] = CommentedMap()
    return config["meta"]


def _plain_meta(entry: dict) -> dict:
    return {**(entry.get("meta") or {}), **((entry.get("config") or {}).get("meta") or {})}


@dataclass(frozen=True)
class DeprecatedModel:
    """A model marked `meta.deprecated` in its YAML (the state lives there, reviewable in git)."""

    name: str
    path: Path  # its properties YAML
    since: dt.date
    archive_on: dt.date
    reason: str
    owner: str | None
    enabled: bool
    archive_id: str | None
    keep: bool = False  # its owner answered: keep it (meta.keep: true)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def deprecated_models(project_dir: Path) -> list[DeprecatedModel]:
    """Every model the catalog deprecated, read from the project's YAML files."""
    found = []
    for path in sorted((project_dir / "models").rglob("*.yml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            config = entry.get("config") or {}
            meta = _plain_meta(entry)
            marker = meta.get("deprecated")
            if not isinstance(marker, dict):
                continue
            owner = meta.get("owner")
            found.append(
                DeprecatedModel(
                    name=entry["name"],
                    path=path,
                    since=_date(marker["since"]),
                    archive_on=_date(marker["archive_on"]),
                    reason=str(marker.get("reason") or ""),
                    owner=owner,
                    enabled=config.get("enabled", True) is not False,
                    archive_id=marker.get("archive_id"),
                    keep=meta.get("keep") is True,
                )
            )
    return found


def mark_deprecated(path: Path, name: str, *, since: dt.date, archive_on: dt.date, reason: str) -> None:
    with _model_entry(path, name) as entry:
        if "deprecation_date" not in entry:
            entry.insert(min(len(entry), 2), "deprecation_date", archive_on)
        else:
            entry["deprecation_date"] = archive_on
        _meta(entry)["deprecated"] = {
            "since": since.isoformat(),
            "reason": reason,
            "archive_on": archive_on.isoformat(),
            "undo": "fix it, or set meta.keep: true: the next run lifts this deprecation",
        }


def lift_deprecation(path: Path, name: str) -> None:
    """The model is no longer stale (fixed in the grace period): the deprecation goes, nothing else."""
    with _model_entry(path, name) as entry:
        entry.pop("deprecation_date", None)
        _meta(entry).pop("deprecated", None)
        if entry.get("config") is not None and not entry["config"].get("meta", True):
            del entry["config"]["meta"]
        if entry.get("config") is not None and not entry["config"]:
            del entry["config"]  # it was made for the deprecation


def set_archived(path: Path, name: str, archive_id: str) -> None:
    with _model_entry(path, name) as entry:
        config = _config(entry)
        if "enabled" in config:
            config["enabled"] = False
        else:
            config.insert(0, "enabled", False)
        _meta(entry)["deprecated"]["archive_id"] = archive_id


def set_restored(path: Path, name: str, today: dt.date) -> None:
    """Enabled, the deprecation gone; `restored_on` keeps the next stale reports from deprecating it at once."""
    with _model_entry(path, name) as entry:
        entry.pop("deprecation_date", None)
        if entry.get("config") is not None:
            entry["config"].pop("enabled", None)
        meta = _meta(entry)
        meta.pop("deprecated", None)
        meta["restored_on"] = today.isoformat()
        if entry.get("config") is not None and not entry["config"]:
            del entry["config"]  # it was made for the deprecation


# --- the steps --------------------------------------------------------------------------------------


def _properties_file(project_dir: Path, node: dict) -> Path | None:
    patch = node.get("patch_path") or ""
    return project_dir / patch.split("://", 1)[1] if "://" in patch else None


def _node_meta(node: dict) -> dict:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _stale_rows(settings: Settings) -> list[dict] | None:
    """Today's stale list, each with the model's first recorded build (`first_built_at`); None before any report."""
    from core.duckdb_connect import connect_file

    con = connect_file(settings)
    try:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'ops'"
            ).fetchall()
        }
        if not {"stale_assets", "model_builds"} <= tables:
            return None
        cursor = con.execute(
            "select s.unique_id, s.name, s.layer, s.owner, s.reason, min(b.completed_at) as first_built_at "
            "from ops.stale_assets s left join ops.model_builds b using (unique_id) "
            "group by all order by s.unique_id"
        )
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _record(settings: Settings, action: str, request_id: str, details: dict, outcome: str = "ok") -> None:
    audit.record(
        settings, action, request_id, outcome, details=details, actor=os.environ.get("GOVERNANCE_ACTOR") or ACTOR
    )


def _tables(node: dict | None) -> list[str]:
    """The serving tables of a model: only published marts are in Superset."""
    if node is None or catalog._layer(node) != "marts" or _node_meta(node).get("publish") is False:
        return []
    return [node.get("alias") or node["name"]]


def _lift_if_fixed(
    settings: Settings,
    model: DeprecatedModel,
    node: dict | None,
    stale_ids: set[str] | None,
    presentation: Presentation | None,
    result: DailyResult,
) -> bool:
    """Lift the deprecation of a model that is not stale any more (built and read again); whether it was."""
    if node is None or (not model.keep and (stale_ids is None or node["unique_id"] in stale_ids)):
        return False  # without a report (None), nothing is known to be fixed
    lift_deprecation(model.path, model.name)
    tables = _tables(node)
    if tables and presentation is not None:
        try:
            presentation.warn(tables, None)
        except PresentationUnavailable as exc:
            result.notes.append(f"{model.name}: the Superset warning stays until Superset answers ({exc})")
    why = "kept by its owner (meta.keep)" if model.keep else "no longer stale"
    details = {"model": node["unique_id"], "why": why}
    _record(settings, "asset_deprecation_lifted", audit.new_request_id("deprecate"), details)
    result.notes.append(f"{model.name}: {why}, its deprecation is lifted")
    return True


def deprecate(
    settings: Settings,
    manifest: dict,
    presentation: Presentation | None,
    *,
    today: dt.date | None = None,
    grace_days: int | None = None,
    result: DailyResult | None = None,
) -> DailyResult:
    """Deprecate today's stale models (ops.stale_assets), tell their owners; refresh the Superset warnings."""
    from core.alerts import send_alert

    today = today or dt.datetime.now(dt.UTC).date()
    grace = stale_grace_days() if grace_days is None else grace_days
    result = result or DailyResult()
    project_dir = settings.dbt_project_dir
    nodes = {n["unique_id"]: n for n in catalog.models(manifest)}
    already = {m.name for m in deprecated_models(project_dir)}
    window_start = today - dt.timedelta(days=stale_after_days())

    def old_enough(row: dict) -> bool:
        # "never built" alone: it may be new. First built inside the window: "not read" only means
        # nobody could have read it yet (a new model, or a new stack whose history was built at once).
        reasons = [r.strip() for r in str(row["reason"]).split(";")]
        first = row["first_built_at"]
        return any(r.startswith(("not built", "not read")) for r in reasons) and (
            first is not None and first.date() <= window_start
        )

    rows = _stale_rows(settings)
    stale_ids = None if rows is None else {row["unique_id"] for row in rows}
    stale = [row for row in rows or [] if row["unique_id"] in nodes and old_enough(row)]
    if nodes and len(stale) * 2 > len(nodes):
        summary = (
            f"{len(stale)} of {len(nodes)} models are stale: the pipeline looks stopped, so none is deprecated "
            "(see var/governance/stale_assets.md)"
        )
        send_alert(summary, kind="stale_assets_outage", stale=len(stale), models=len(nodes))
        result.notes.append(summary)
        stale = []
    for row in stale:
        node = nodes[row["unique_id"]]
        name, meta = row["name"], _node_meta(node)
        if node["name"] in already:
            continue
        if meta.get("keep") is True:
            result.notes.append(f"{name}: stale, kept (meta.keep)")
            continue
        restored = meta.get("restored_on")
        if restored and (today - _date(restored)).days < stale_after_days():
            result.notes.append(f"{name}: stale, restored on {restored}: judged again later")
            continue
        path = _properties_file(project_dir, node)
        if path is None or not path.exists():
            result.notes.append(f"{name}: stale, but it has no properties YAML to mark")
            continue
        archive_on = today + dt.timedelta(days=grace)
        mark_deprecated(path, node["name"], since=today, archive_on=archive_on, reason=row["reason"])
        request_id = audit.new_request_id("deprecate")
        owner = row["owner"] or meta.get("owner")
        _record(
            settings,
            "asset_deprecated",
            request_id,
            {"model": row["unique_id"], "file": str(path.relative_to(project_dir)), "archive_on": str(archive_on)},
        )
        notice = (
            f"to {owner or 'the project owner'}: {name} is deprecated: {row['reason']}. It will be archived on "
            f"{archive_on} (its dashboards and charts exported and removed from Superset, the model disabled) "
            f"unless it is fixed, or kept with `meta.keep: true` in {path.relative_to(project_dir)}"
        )
        send_alert(notice, kind="stale_asset_deprecated", owner=owner, model=row["unique_id"], archive_on=archive_on)
        _record(settings, "asset_owner_told", request_id, {"model": row["unique_id"], "owner": owner, "via": "alert"})
        result.deprecated.append(f"{name} (owner {owner or '-'}): archive on {archive_on}; {row['reason']}")
    by_name = {n["name"]: n for n in nodes.values()}
    for model in deprecated_models(project_dir):
        node = by_name.get(model.name)
        if not model.enabled or _lift_if_fixed(settings, model, node, stale_ids, presentation, result):
            continue
        tables = _tables(node)
        if tables and presentation is not None:
            message = (
                f"**Deprecated** since {model.since}: {model.reason}. Archived on {model.archive_on} "
                f"(owner: {model.owner or 'unknown'})."
            )
            try:
                counts = presentation.warn(tables, message)
            except PresentationUnavailable as exc:
                result.notes.append(f"{model.name}: Superset warning not set now ({exc})")
                continue
            if counts.get("changed"):
                _record(
                    settings, "asset_warning_shown", audit.new_request_id("deprecate"), {"model": model.name, **counts}
                )
    return result


def archive_due(
    settings: Settings,
    manifest: dict,
    presentation: Presentation | None,
    *,
    today: dt.date | None = None,
    result: DailyResult | None = None,
) -> DailyResult:
    """Archive every deprecated model whose archive day has come: export and remove in Superset, then disable."""
    today = today or dt.datetime.now(dt.UTC).date()
    result = result or DailyResult()
    project_dir = settings.dbt_project_dir
    nodes = {n["name"]: n for n in catalog.models(manifest)}
    child_map = manifest.get("child_map") or {}
    rows = _stale_rows(settings)
    stale_ids = None if rows is None else {row["unique_id"] for row in rows}
    for model in deprecated_models(project_dir):
        if not model.enabled or model.archive_on > today:
            continue
        node = nodes.get(model.name)
        if node is None:
            result.waiting.append(f"{model.name}: not in dbt's manifest (parse the project)")
            continue
        if _lift_if_fixed(settings, model, node, stale_ids, presentation, result):
            continue
        blockers = sorted(c for c in child_map.get(node["unique_id"], []) if c.startswith(_BLOCKING_CHILDREN))
        if blockers:
            result.waiting.append(f"{model.name}: still used by {', '.join(blockers)}")
            continue
        tables = _tables(node)
        if tables and presentation is None:
            result.waiting.append(f"{model.name}: Superset is not configured here, its dashboards may still read it")
            continue
        archive_id = f"{today.isoformat()}/{model.name}"
        folder = archive_dir(settings) / archive_id
        folder.mkdir(parents=True, exist_ok=True)
        request_id = audit.new_request_id("archive")
        removed: dict[str, Any] = {}
        if tables:
            try:
                removed = presentation.archive(tables, folder)  # type: ignore[union-attr]
            except PresentationUnavailable as exc:
                result.waiting.append(f"{model.name}: Superset unreachable ({exc}); tried again next run")
                continue
        record = {
            "id": archive_id,
            "model": node["unique_id"],
            "name": model.name,
            "properties_file": str(model.path.relative_to(project_dir)),
            "owner": model.owner,
            "archived_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": model.reason,
            "superset": removed,
        }
        (folder / "archive.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        _record(
            settings,
            "asset_archived",
            request_id,
            {"model": node["unique_id"], "archive": archive_id, "exported": removed.get("exported", {})},
        )
        _record(
            settings, "asset_removed", request_id, {"model": node["unique_id"], "removed": removed.get("removed", {})}
        )
        set_archived(model.path, model.name, archive_id)
        _record(settings, "asset_disabled", request_id, {"model": node["unique_id"], "file": record["properties_file"]})
        result.archived.append(
            f"{model.name}: archive {archive_id} (restore: `python -m stackctl governance catalog "
            f"restore {archive_id}`)"
        )
    return result


def archives(settings: Settings) -> list[dict]:
    """Every archive made, newest first (each folder's archive.json)."""
    found = [json.loads(p.read_text()) for p in archive_dir(settings).glob("*/*/archive.json")]
    return sorted(found, key=lambda a: a["archived_at"], reverse=True)


def restore(
    settings: Settings, archive_id: str, presentation: Presentation | None, *, today: dt.date | None = None
) -> dict:
    """Enable the archived model again and re-import its exported Superset assets; audited."""
    today = today or dt.datetime.now(dt.UTC).date()
    known = {a["id"]: a for a in archives(settings)}
    record = known.get(archive_id) or next((a for a in known.values() if a["name"] == archive_id), None)
    if record is None:
        listed = ", ".join(sorted(known)) or "none yet"
        raise LifecycleError(f"no archive {archive_id!r} in {archive_dir(settings)} (archives: {listed})")
    folder = archive_dir(settings) / record["id"]
    path = settings.dbt_project_dir / record["properties_file"]
    request_id = audit.new_request_id("restore")
    # The model first: the Superset side regenerates dbt's exposures, which must find it enabled.
    archived_text = path.read_text()
    set_restored(path, record["name"], today)
    _record(settings, "asset_enabled", request_id, {"model": record["model"], "archive": record["id"]})
    imported: dict[str, Any] = {}
    if record.get("superset"):
        if presentation is None:
            raise LifecycleError(f"{record['id']} holds Superset assets: restoring needs Superset configured")
        try:
            imported = presentation.restore(folder)
        except Exception:
            # All or nothing: an enabled model whose dashboards are still archived would be half a restore.
            path.write_text(archived_text)
            details = {"model": record["model"], "archive": record["id"], "model_back_to": "disabled"}
            _record(settings, "asset_restored", request_id, details, "failed")
            raise
    _record(settings, "asset_restored", request_id, {"model": record["model"], "archive": record["id"], **imported})
    return {"archive": record["id"], "model": record["model"], "enabled": True, "superset": imported}


# --- the daily step and the report -----------------------------------------------------------------


def report_section(result: DailyResult, today: dt.date) -> str:
    lines = [f"## Deprecation and archiving ({today})", ""]
    for title, items in (
        ("Deprecated today, owner told", result.deprecated),
        ("Archived today", result.archived),
        ("Due, not archived", result.waiting),
        ("Notes", result.notes),
    ):
        if items:
            lines += [f"{title}:", "", *(f"- {item}" for item in items), ""]
    if len(lines) == 2:
        lines += ["Nothing deprecated or archived today.", ""]
    return "\n".join(lines)


def run_daily(
    settings: Settings,
    manifest: dict,
    presentation: Presentation | None,
    *,
    today: dt.date | None = None,
) -> DailyResult:
    """The maintenance DAG's step after the stale report: deprecate, then archive what is due; noted in the report."""
    today = today or dt.datetime.now(dt.UTC).date()
    result = deprecate(settings, manifest, presentation, today=today)
    archive_due(settings, manifest, presentation, today=today, result=result)
    report = governance_dir(settings) / "stale_assets.md"
    if report.exists():
        text = report.read_text().split("\n## Deprecation and archiving", 1)[0].rstrip("\n")
        report.write_text(f"{text}\n\n{report_section(result, today)}")
    return result
