"""core.orchestration is the one list of DAG ids: every dags/*.py DAG uses one, and README's DAG table names each.

Fast and Airflow-free: the DAG files are parsed with `ast`, not imported.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest

from core import orchestration
from core.orchestration import DAG_IDS
from core.settings import SettingError

REPO = Path(__file__).resolve().parents[2]


def _dag_id(node: ast.expr, path: Path) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(getattr(orchestration, node.id, None), str):
        return getattr(orchestration, node.id)
    raise AssertionError(
        f"{path.name}: dag_id={ast.unparse(node)} is neither a string nor a core.orchestration constant"
    )


def dag_ids_in_files() -> dict[str, str]:
    """dag_id -> file name, from every `dag_id=` keyword of a call in dags/*.py (the @dag decorator or DAG(...))."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "dag_id":
                        dag_id = _dag_id(keyword.value, path)
                        assert dag_id not in found, f"{dag_id} set in {found[dag_id]} and {path.name}"
                        found[dag_id] = path.name
    return found


def test_the_dag_files_set_exactly_the_dag_ids_of_core_orchestration():
    assert len(set(DAG_IDS)) == len(DAG_IDS), "a DAG id listed twice"
    assert set(dag_ids_in_files()) == set(DAG_IDS)


def test_every_dag_file_is_named_like_its_dag():
    assert all(path == f"{dag_id}.py" for dag_id, path in dag_ids_in_files().items())


def test_the_readme_dag_table_names_every_dag():
    lines = (REPO / "README.md").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"\|\s*DAG\s*\|", line))
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1])
    named = {name for cell in rows for name in re.findall(r"`([^`]+)`", cell)}
    assert set(DAG_IDS) <= named, f"README's DAG table lacks {sorted(set(DAG_IDS) - named)}"


def test_the_task_timeout_is_three_hours_unless_set_and_a_bad_value_is_refused(monkeypatch):
    monkeypatch.delenv(orchestration.TASK_TIMEOUT_VARIABLE, raising=False)
    assert orchestration.task_timeout() == dt.timedelta(hours=3)
    monkeypatch.setenv(orchestration.TASK_TIMEOUT_VARIABLE, "90.5")
    assert orchestration.task_timeout() == dt.timedelta(minutes=90, seconds=30)
    for bad in ("0", "-5", "ten", "1e3"):
        monkeypatch.setenv(orchestration.TASK_TIMEOUT_VARIABLE, bad)
        with pytest.raises(SettingError, match="TASK_TIMEOUT_MINUTES"):
            orchestration.task_timeout()
