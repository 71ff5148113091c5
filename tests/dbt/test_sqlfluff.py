"""The models and singular tests pass sqlfluff with the dbt templater (dbt_project/.sqlfluff)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dbt.fixture_warehouse import DBT_PROJECT, dbt_env

pytestmark = pytest.mark.slow


def test_sqlfluff_lint_passes(tmp_path):
    env = dbt_env(tmp_path / "lint.duckdb", tmp_path / "target", "lint-key")
    sqlfluff = str(Path(sys.executable).with_name("sqlfluff"))
    # sqlfluff takes the templater only from a .sqlfluff in the working directory
    result = subprocess.run(
        # two processes: dbt templates in this one while the other parses and lints (25 s -> 17 s here)
        [sqlfluff, "lint", "models", "tests", "--nofail", "--format", "json", "--processes", "2"],
        cwd=DBT_PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    files = json.loads(result.stdout)
    assert len(files) >= 30, "every model and singular test is linted"
    violations = [
        f"{f['filepath']}:{v['start_line_no']} {v['code']} {v['description']}" for f in files for v in f["violations"]
    ]
    assert not violations, "\n".join(violations)
    assert not (DBT_PROJECT / "target" / "sqlfluff").exists()
