"""Dependencies point one way: a package imports only the packages below it.

    core                      settings, .env, alerts, the dbt runner, files (imports nothing of ours)
    ingestion                 sources -> lake -> warehouse raw
    quality                   gates, data health (reads what ingestion wrote)
    serving                   what the serving file holds (`serving.schema`) and publish
    ml, governance            producers of published tables, side by side (neither imports the other)
    superset                  dashboards as code, provisioning
    pipelines                 step sequences: the headless runner, publish + cache, the marts cycle
    stackctl, bench           the commands and the benchmark

A package's `__main__.py` is a command line, the top of the stack whatever its folder, so it may
import any layer. The DAG files sit above everything and are not checked here. The check reads
every import statement, those inside functions included: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = [
    {"core"},
    {"ingestion"},
    {"quality"},
    {"serving"},
    {"ml", "governance"},
    {"superset"},
    {"pipelines"},
    {"stackctl", "bench"},
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
# Known exceptions, each with the move that removes it.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(RANK)


def _modules() -> list[Path]:
    return sorted(p for package in RANK for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_is_in_a_layer():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages - {"tests", "dags"} <= set(RANK), "a new top-level package needs a layer here"


@pytest.mark.parametrize("package", sorted(RANK))
def test_no_package_imports_a_layer_above_or_beside_it(package):
    upward = []
    for path in _modules():
        relative = path.relative_to(REPO).as_posix()
        owner = relative.split("/")[0]
        if owner != package or path.name == "__main__.py":
            continue
        for imported in _imports(path) - {owner}:
            if RANK[imported] >= RANK[owner] and (relative, imported) not in ALLOWED_UPWARD:
                upward.append(f"{relative} imports {imported}")
    assert not upward, "\n".join(upward)


def test_the_exceptions_are_still_needed():
    for relative, imported in ALLOWED_UPWARD:
        assert imported in _imports(REPO / relative), f"{relative} no longer imports {imported}: drop the exception"
