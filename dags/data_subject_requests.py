"""
### data_subject_requests: export or erase everything held about one person (GDPR art. 15 / 17)

**When it runs**: never on a schedule. Trigger it with parameters (*Trigger DAG* -> form):
`action` = `export` or `erase`, and `customer_id` (preferred) or `email`.

**What it does** (one task, `run_request`, in the warehouse pool; the work is `governance.dsr`):

- `export`: one zip with a CSV per place holding the person's rows (lake partitions, warehouse
  raw, staging, marts, serving) and a `manifest.json`, in `var/governance/exports/<request id>.zip`.
- `erase`: rewrites the lake partitions without their rows (atomic swap, manifests updated),
  deletes them from the warehouse's raw tables, rebuilds the marts (`dbt build --full-refresh`),
  runs gate 2 and republishes, checks that nothing is left, records the person in the erasure
  list (keyed hashes) so a re-extract cannot bring them back, and deletes earlier exports of them.
  The app DB is erased by the shop's own account deletion (its owner), not here.

Every request is in the append-only audit log `var/governance/audit.jsonl` (who: the user who
triggered the run; when; what; outcome; the person only as a keyed hash), and on the Governance
dashboard.

**Runbook.** `not found`: no data held for that id/e-mail (the audit log says so; answer the person
accordingly). A failure names the step; the task is idempotent: clear it once the cause is fixed
(an erasure that died after deleting raw rows rebuilds the marts on the retry). Note that the run's
parameters stay in Airflow's metadata DB: prefer `customer_id`, or the CLI
(`python -m stackctl governance dsr erase --customer-id N --yes`), which keeps no copy.
"""

from __future__ import annotations

import datetime as dt

from _common.defaults import DEFAULT_ARGS
from airflow.sdk import Param, dag, get_current_context, task

from core.orchestration import DATA_SUBJECT_REQUESTS, WAREHOUSE_POOL


@dag(
    dag_id=DATA_SUBJECT_REQUESTS,
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # one request at a time: an erasure rewrites shared state
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["governance"],
    params={
        "action": Param("export", enum=["export", "erase"], description="export or erase"),
        "customer_id": Param(None, type=["null", "integer"], description="the person's customer id"),
        "email": Param(None, type=["null", "string"], description="or their e-mail address"),
    },
)
def data_subject_requests():
    @task(pool=WAREHOUSE_POOL)
    def run_request() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from core.settings import get_settings
        from governance.dsr import SubjectNotFound
        from governance.dsr import run_request as run
        from pipelines.marts import rebuild_and_publish

        context = get_current_context()
        params = context["params"]
        if (params.get("customer_id") is None) == (not params.get("email")):
            raise ValueError("give exactly one of customer_id and email")
        actor = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        try:
            return run(
                get_settings(),
                params["action"],
                params.get("customer_id"),
                params.get("email"),
                republish=rebuild_and_publish,
                actor=actor,
            )
        except SubjectNotFound as exc:  # a retry cannot find them either
            raise AirflowFailException(str(exc)) from exc

    run_request()


data_subject_requests()
