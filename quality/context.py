"""The Great Expectations project in `quality/gx/`: opening it, and keeping it equal to the code.

The GX File Data Context's configuration (suites, validation definitions, checkpoints, the
data sources' assets) is committed under `quality/gx/`. Validation results and Data Docs are
run output: `great_expectations.yml` points them at `${gx_docs_dir}`, filled in at run time
with `docs_dir()` (default `<var>/gx_docs`, override with `GX_DOCS_DIR`), outside git.

`ensure_checkpoint` builds the objects from `quality.suites` and stores them with GX's
`add_or_update`, but only when they differ from what is stored: unchanged objects are not
rewritten (no churn in git, nothing written on a read-only checkout), and expectation ids are
carried over (GX 1.24's `suites.add_or_update` would give every expectation a new id).
`sync()` does that for every suite (`python -m quality sync [--check]`).

Great Expectations is imported lazily (it costs ~2 s), and one process at a time uses the
project (an flock beside the docs): GX rewrites `great_expectations.yml` and the Data Docs
index without locking, and parallel gate tasks would otherwise race on them
(docs/decisions/0006-great-expectations-project.md).
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import great_expectations as gx
    from great_expectations.data_context import FileDataContext

GX_PROJECT_DIR = Path(__file__).resolve().parent / "gx"
DATA_DOCS_SITE = "local_site"

# One pandas data source per gate; one dataframe asset per table, validated whole.
DATASOURCES = {"gate1": "landed_batches", "gate2": "warehouse_marts"}
BATCH_DEFINITION = "whole_batch"

log = logging.getLogger(__name__)


def docs_dir() -> Path:
    """Where validation results and Data Docs go (untracked run output; `GX_DOCS_DIR`)."""
    from quality.settings import gx_docs_dir

    return gx_docs_dir()


def import_gx() -> Any:
    """Import Great Expectations with its INFO logs off (noise in task logs)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations

    return great_expectations


@contextmanager
def open_context(docs: Path | None = None) -> Iterator[FileDataContext]:
    """The project's File Data Context, held exclusively for the duration of the block."""
    docs = docs or docs_dir()
    docs.mkdir(parents=True, exist_ok=True)
    gx = import_gx()
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.exceptions import DataContextRequiredError

    def current_project() -> Any:
        try:
            return project_manager.get_current_project()
        except DataContextRequiredError:
            return None

    enclosing = current_project()
    context = None
    with (docs / ".gx.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            context = gx.get_context(
                mode="file",
                context_root_dir=GX_PROJECT_DIR,
                runtime_environment={"gx_docs_dir": str(docs)},
            )
            yield context
        finally:
            # get_context() also makes the context GX's module-wide current project, where it
            # would outlive the block with what it cached of the last validation (resident under
            # the next stage's memory in a one-process run): hand back the previous one.
            if context is not None and current_project() is context:
                project_manager.set_project(enclosing)
            fcntl.flock(lock, fcntl.LOCK_UN)


def forget_batches(context: Any, gate: str) -> None:
    """Drop the DataFrames GX cached for the gate's datasource after a validation.

    GX's execution engine keeps every batch it loaded (and its data) in its batch manager, and a
    gate step shares one context across its validations (`quality.gates.batched_data_docs`):
    without this, every validated frame (a gate-1 chunk of a million rows) stays resident until
    the step ends, and the chunks of a backfill pile up.
    """
    datasource = context.data_sources.all().get(DATASOURCES[gate])
    engine = getattr(datasource, "_execution_engine", None)  # private: GX has no public reset
    if engine is not None:
        engine.batch_manager.reset_batch_cache()  # the Batch objects ...
        engine.batch_manager._batch_data_cache.clear()  # ... and their DataFrames, kept apart


def names(gate: str, table: str) -> dict[str, str]:
    """GX object names for one (gate, table): asset, validation definition and checkpoint."""
    return {
        "datasource": DATASOURCES[gate],
        "asset": table,
        "validation_definition": f"{gate}.{table}",
        "checkpoint": f"{gate}.{table}",
    }


def _comparable(expectation: Any) -> dict:
    """An expectation's configuration without its id (what 'unchanged' means)."""
    data = expectation.configuration.to_json_dict()
    data.pop("id", None)
    data.pop("rendered_content", None)
    for key in ("meta", "notes"):
        data[key] = data.get(key) or None
    return data


def _ensure_batch_definition(context: FileDataContext, datasource: str, asset: str, changes: list[str], write: bool):
    existing = {ds.name: ds for ds in context.data_sources.all().values()}
    if datasource not in existing:
        changes.append(f"datasource {datasource}")
        if not write:
            return None
        source = context.data_sources.add_pandas(datasource)
    else:
        source = existing[datasource]
    if asset not in {a.name for a in source.assets}:
        changes.append(f"asset {datasource}.{asset}")
        if not write:
            return None
        data_asset = source.add_dataframe_asset(asset)
    else:
        data_asset = source.get_asset(asset)
    if BATCH_DEFINITION not in {b.name for b in data_asset.batch_definitions}:
        changes.append(f"batch definition {datasource}.{asset}.{BATCH_DEFINITION}")
        if not write:
            return None
        return data_asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    return data_asset.get_batch_definition(BATCH_DEFINITION)


def _ensure_suite(context: FileDataContext, suite: gx.ExpectationSuite, changes: list[str], write: bool):
    from great_expectations.exceptions import DataContextError

    try:
        stored = context.suites.get(suite.name)
    except DataContextError:
        stored = None
    if stored is not None:
        wanted = [_comparable(e) for e in suite.expectations]
        if [_comparable(e) for e in stored.expectations] == wanted:
            return stored
        # Keep the ids of unchanged expectations so the stored JSON only changes where it must.
        ids = {repr(_comparable(e)): e.id for e in stored.expectations}
        for expectation in suite.expectations:
            expectation.id = ids.get(repr(_comparable(expectation)))
    changes.append(f"suite {suite.name}")
    return context.suites.add_or_update(suite) if write else None


def _ensure_validation_definition(context: FileDataContext, name: str, batch_definition, suite, changes, write):
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    try:
        stored = context.validation_definitions.get(name)
    except DataContextError:
        stored = None
    if (
        stored is not None
        and stored.suite.name == suite.name
        and stored.data.name == batch_definition.name
        and stored.data.data_asset.name == batch_definition.data_asset.name
        and stored.data.data_asset.datasource.name == batch_definition.data_asset.datasource.name
    ):
        return stored
    changes.append(f"validation definition {name}")
    if not write:
        return None
    definition = gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
    return context.validation_definitions.add_or_update(definition)


def _ensure_checkpoint_object(context: FileDataContext, name: str, definition, changes, write):
    import great_expectations as gx
    from great_expectations.exceptions import DataContextError

    wanted = gx.Checkpoint(
        name=name,
        validation_definitions=[definition],
        # No UpdateDataDocsAction: it renders the pages of each run on its own (~0.45 s, mostly
        # compiling templates); quality.gates builds the pages of a whole gate step in one go.
        actions=[],
        # SUMMARY: counts plus up to 20 unexpected values per expectation, enough to say why.
        result_format={"result_format": "SUMMARY"},
    )
    try:
        stored = context.checkpoints.get(name)
    except DataContextError:
        stored = None
    if stored is not None:
        same = (
            [v.name for v in stored.validation_definitions] == [definition.name]
            and [a.dict() for a in stored.actions] == [a.dict() for a in wanted.actions]
            and stored.result_format == wanted.result_format
        )
        if same:
            return stored
    changes.append(f"checkpoint {name}")
    return context.checkpoints.add_or_update(wanted) if write else None


def ensure_checkpoint(
    context: FileDataContext, gate: str, table: str, *, write: bool = True, changes: list[str] | None = None
):
    """The stored checkpoint for (gate, table), created or updated from the code if needed.

    With write=False nothing is stored; the names of objects that differ are appended to
    `changes` and None is returned when something is missing.
    """
    from quality.suites import SUITES

    changes = [] if changes is None else changes
    n = names(gate, table)
    batch_definition = _ensure_batch_definition(context, n["datasource"], n["asset"], changes, write)
    suite = _ensure_suite(context, SUITES[gate][table](), changes, write)
    if batch_definition is None or suite is None:
        return None
    definition = _ensure_validation_definition(
        context, n["validation_definition"], batch_definition, suite, changes, write
    )
    if definition is None:
        return None
    return _ensure_checkpoint_object(context, n["checkpoint"], definition, changes, write)


def sync(*, check: bool = False, docs: Path | None = None) -> list[str]:
    """Store every suite and checkpoint defined in code; with check=True only list differences."""
    from quality.suites import SUITES

    changes: list[str] = []
    with open_context(docs) as context:
        for gate, tables in SUITES.items():
            for table in tables:
                ensure_checkpoint(context, gate, table, write=not check, changes=changes)
    return changes


def build_docs(docs: Path | None = None, *, keep_days: int | None = None) -> Path:
    """Rebuild the whole Data Docs site, first dropping results older than keep_days; return index.html.

    Every checkpoint run rebuilds the site index, which costs more the more results are stored
    (0.25 s per gate run with 1 stored result, 0.7 s with 300): prune regularly. The long
    history is in ops.data_health.
    """
    docs = docs or docs_dir()
    with open_context(docs) as context:
        if keep_days is not None:
            prune_results(docs, keep_days)
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
    return docs_index(docs)


def prune_results(docs: Path, keep_days: int) -> int:
    """Delete stored validation results and their Data Docs pages older than keep_days."""
    cutoff = time.time() - keep_days * 86400
    removed = 0
    for root in (docs / "validations", docs / "site" / "validations"):
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.suffix in {".json", ".html"} and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
    return removed


def build_pages(context: FileDataContext, identifiers: list, *, index: bool = True) -> None:
    """Render the Data Docs pages of these validation results, and the site's index with them
    when `index` (it reads every stored result: see build_docs)."""
    if identifiers:
        context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=identifiers, build_index=index)


def docs_index(docs: Path) -> Path:
    return docs / "site" / "index.html"
