"""A DAG run is `failed` whenever one of its tasks failed, clean-up tasks or not.

Airflow 3 decides a run's state from its leaf tasks. A task with a trigger rule like `all_done`
runs (and succeeds) after an upstream failure; if it is a leaf, or stands between a failed task
and every leaf, the run turns green over the failure. So: from every task, some leaf must be
reachable through tasks that all use `all_success` (they become upstream_failed in turn).
"""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(dbt_manifest):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def _fails_with_its_upstream(task) -> bool:
    """`all_success` tasks become upstream_failed; Cosmos' watcher sensors (`always`) watch the
    dbt producer and fail themselves when it failed."""
    watcher = type(task).__module__.startswith("cosmos") and "Watcher" in type(task).__name__
    return task.trigger_rule == "all_success" or watcher


def _failure_reaches_a_leaf(dag, task_id: str) -> bool:
    """Whether a failure of `task_id` propagates to at least one leaf."""
    seen, todo = set(), [task_id]
    while todo:
        task = dag.get_task(todo.pop())
        if not task.downstream_task_ids:
            return True
        for child_id in task.downstream_task_ids:
            child = dag.get_task(child_id)
            if child_id not in seen and _fails_with_its_upstream(child):
                seen.add(child_id)
                todo.append(child_id)
    return False


def test_every_task_failure_fails_the_run(dagbag):
    assert dagbag.import_errors == {}
    hidden = [
        f"{dag_id}.{task.task_id}"
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if not _failure_reaches_a_leaf(dag, task.task_id)
    ]
    assert hidden == [], "a failure of these tasks would leave the run green"
    # The clean-ups still run after a failure.
    for dag_id, task_id in [("governance_maintenance", "refresh_dashboard"), ("data_health", "data_docs")]:
        assert dagbag.dags[dag_id].get_task(task_id).trigger_rule == "all_done"
