"""The weekly whole-table run of the dbt data tests (the `data_tests_full` DAG).

Daily builds test only the rows they changed (dbt_project/macros/data_tests_window.sql); this runs
every data test of the project on whole tables and names the ones that failed.
"""

from __future__ import annotations

import json
import time

from core.dbt_cli import marts_target, run_dbt, run_results_path
from core.settings import Settings


class DataTestsFailed(RuntimeError):
    """Data tests ran and some failed: a retry would fail the same way."""


def failed_tests(settings: Settings, since: float, target: str = "prod") -> list[str]:
    """The tests that failed (status `fail`) in the dbt command that wrote `target`'s
    run_results.json after `since` (a time.time()); none when no command wrote it since (dbt
    stopped before testing)."""
    path = run_results_path(settings, target)
    if not path.exists() or path.stat().st_mtime < since:
        return []
    results = json.loads(path.read_text()).get("results", [])
    return sorted(
        r["unique_id"].split(".")[2] for r in results if r["unique_id"].startswith("test.") and r["status"] == "fail"
    )


def run_whole_table_tests(settings: Settings) -> None:
    """`dbt test` on whole tables, on the marts engine; DataTestsFailed names the failed tests,
    other errors pass through."""
    started = time.time()
    target, selection = marts_target(settings)
    try:
        run_dbt(settings, "test", "--vars", "{data_tests_scope: all}", *selection, target=target)
    except RuntimeError as exc:
        failed = failed_tests(settings, started, target)
        if failed:
            raise DataTestsFailed(f"{len(failed)} data test(s) failed on whole tables: {', '.join(failed)}") from exc
        raise
