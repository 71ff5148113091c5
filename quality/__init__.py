"""Quality gates: Great Expectations checks that stop bad data before it moves on.

Gate 1 audits a landed lake batch before it is loaded into the warehouse's `raw` schema; gate 2
audits the marts before they are published to the serving file. Suites are code
(`quality.suites`, generated from `quality.specs`); the GX project with the committed
checkpoints lives in `quality/gx/`; validation results and Data Docs go to `<var>/gx_docs/`.

Around the gates: `quality.quarantine` holds failed landed batches in `lake/quarantine/` and
releases fixed ones, `quality.freshness` checks every source against its freshness SLA, and
`quality.health` keeps the `ops.*` data-health tables the Data health dashboard shows. The
pipeline steps (gate, record, quarantine, raise) are `quality.pipeline_gates`.

Importing this package is cheap: Great Expectations, pandas and DuckDB are imported only when a
gate runs, so Airflow can parse DAGs that import it.

    from quality import validate_landed_batch, validate_marts, record_results
    result = validate_landed_batch("orders", [path], run_id, ds)
    record_results(settings.warehouse_path, result, settings=settings)
    result.raise_for_failure()   # GateFailed with the one-line reason (warnings never raise)

CLI: `python -m quality --help` (gate1, gate2, quarantine, freshness, sync, docs).
"""

from quality.gates import run_gate, validate_landed_batch, validate_marts
from quality.health import record_results
from quality.results import ExpectationOutcome, GateFailed, GateResult

__all__ = [
    "ExpectationOutcome",
    "GateFailed",
    "GateResult",
    "record_results",
    "run_gate",
    "validate_landed_batch",
    "validate_marts",
]
