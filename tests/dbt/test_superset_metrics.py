"""One definition per KPI: each Superset dataset metric equals its dbt semantic-layer twin.

The KPIs are defined in the semantic layer (dbt_project/models/**: metrics YAML) and typed again as
SQL in the Superset datasets (superset/assets/datasets/**: `metrics[].expression`). superset/metric_map.yaml
says which dbt metric each Superset metric is, or why it is Superset-only. On the shared fixture
warehouse, every mapped Superset expression is evaluated over its dataset's rows in DuckDB and compared
with the whole-range value `mf query` gives for its dbt metric (one `mf` run for all of them).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from superset.exposures import ASSETS_DIR
from tests.dbt.fixture_warehouse import DBT_PROJECT, REPO

pytestmark = pytest.mark.slow  # a real mf process on the built warehouse

METRIC_MAP = REPO / "superset" / "metric_map.yaml"
MF = Path(sys.executable).with_name("mf")

# Datasets whose table rounds money at another grain than the dbt metric's semantic model: the same
# sum, rounded once per row of a different table. fct_daily_revenue rounds each day's total, the
# semantic model (fct_daily_revenue_by_segment) each segment-day, so totals may differ by half a cent
# per segment-day row, never by a definition (returns alone are thousands of euros).
ROUNDED_AT_ANOTHER_GRAIN = {"fct_daily_revenue": "marts.fct_daily_revenue_by_segment"}


@functools.cache
def marts_datasets() -> dict[str, dict]:
    """The Superset datasets that read the marts, by table_name."""
    datasets = {}
    for path in sorted((ASSETS_DIR / "datasets").rglob("*.yaml")):
        dataset = yaml.safe_load(path.read_text())
        if dataset["schema"] == "marts":
            datasets[dataset["table_name"]] = dataset
    return datasets


def metric_map() -> dict[str, dict[str, str | dict]]:
    return yaml.safe_load(METRIC_MAP.read_text())


def mapped_pairs() -> list[tuple[str, str, str]]:
    """(dataset table_name, Superset metric_name, dbt metric name) of every mapped metric."""
    return [
        (table, superset_name, target)
        for table, metrics in metric_map().items()
        for superset_name, target in metrics.items()
        if isinstance(target, str)
    ]


def test_every_marts_metric_in_superset_is_mapped_or_superset_only():
    """A metric added in Superset (or renamed there and exported) must be tied to a dbt metric or say why not."""
    datasets, mapping = marts_datasets(), metric_map()
    assert set(mapping) == set(datasets), "superset/metric_map.yaml lists exactly the marts datasets"
    for table, dataset in datasets.items():
        in_superset = {metric["metric_name"] for metric in dataset["metrics"] or []}
        assert set(mapping[table]) == in_superset, (
            f"{table}: map {sorted(mapping[table])} vs Superset {sorted(in_superset)}"
        )
        for name, target in mapping[table].items():
            if isinstance(target, dict):
                assert set(target) == {"superset_only"} and target["superset_only"].strip(), (table, name)
            else:
                assert isinstance(target, str), (table, name)


def test_every_mapped_dbt_metric_exists(built):
    """A dbt metric renamed or removed leaves no Superset metric pointing at nothing."""
    manifest = json.loads((built.target_path / "semantic_manifest.json").read_text())
    dbt_metrics = {metric["name"] for metric in manifest["metrics"]}
    for table, name, target in mapped_pairs():
        assert target in dbt_metrics, f"{table}.{name} maps to {target}, which the semantic layer does not define"


def superset_value(con: duckdb.DuckDBPyConnection, dataset: dict, expression: str) -> float | None:
    """The metric over all of the dataset's rows, as Superset's query would compute it with no filter."""
    if dataset["sql"]:
        source = f"({dataset['sql']}) as virtual_table"
    else:
        source = f'"{dataset["schema"]}"."{dataset["table_name"]}"'
    (value,) = con.execute(f"select cast({expression} as double) from {source}").fetchone()
    return value


@pytest.fixture(scope="module")
def dbt_values(built, tmp_path_factory) -> dict[str, float | None]:
    """Every mapped dbt metric's whole-range value, from one `mf query` with no group-by."""
    tmp = tmp_path_factory.mktemp("mf-superset")
    project = tmp / "dbt_project"  # mf reads <cwd>/target/semantic_manifest.json: a copy, not Cosmos'
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target*", "logs", "dbt_packages"))
    (project / "target").mkdir()
    shutil.copy(built.target_path / "semantic_manifest.json", project / "target")
    warehouse = tmp / "warehouse" / built.warehouse_path.name  # same file name: same DuckDB catalog
    warehouse.parent.mkdir()
    shutil.copy(built.warehouse_path, warehouse)
    names = sorted({target for _, _, target in mapped_pairs()})
    out = tmp / "metrics.csv"
    result = subprocess.run(
        [str(MF), "query", "--metrics", ",".join(names), "--csv", str(out)],
        cwd=project,
        env={"PATH": f"{MF.parent}:/usr/bin:/bin", "HOME": str(tmp), "WAREHOUSE_PATH": str(warehouse)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and out.exists(), (result.stdout + result.stderr)[-3000:]
    with duckdb.connect() as con:
        frame = con.execute("select * from read_csv(?, all_varchar = true)", [str(out)]).df()
    assert len(frame) == 1, frame
    return {name: None if frame[name][0] in (None, "") else float(frame[name][0]) for name in names}


@pytest.mark.parametrize(("table", "superset_name", "dbt_name"), mapped_pairs())
def test_superset_metric_equals_its_dbt_metric(built, dbt_values, table, superset_name, dbt_name):
    dataset = marts_datasets()[table]
    (metric,) = [m for m in dataset["metrics"] if m["metric_name"] == superset_name]
    with duckdb.connect(str(built.warehouse_path), read_only=True) as con:
        got = superset_value(con, dataset, metric["expression"])
        cents = 0.005  # to the cent
        if table in ROUNDED_AT_ANOTHER_GRAIN and abs(dbt_values[dbt_name] or 0) >= 1:
            (rows,) = con.execute(f"select count(*) from {ROUNDED_AT_ANOTHER_GRAIN[table]}").fetchone()
            cents = 0.005 * rows
    want = dbt_values[dbt_name]
    assert want is not None and want != 0, f"{dbt_name} is empty on the fixture warehouse: the check would be vacuous"
    assert got == pytest.approx(want, rel=1e-9, abs=cents if abs(want) >= 1 else 0), (
        f"Superset {table}.{superset_name} = {metric['expression']} gives {got}; dbt metric {dbt_name} gives {want}"
    )
