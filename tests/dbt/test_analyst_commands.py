"""The dbt commands an analyst types work as typed: from a plain shell, through make, and down to the
dashboards (exposures generated from the Superset assets)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.envfile import ensure_env_file
from superset.asset_files import read_assets
from superset.exposures import ASSETS_DIR, EXPOSURES_FILE, exposures, model_relations, render
from tests.dbt.fixture_warehouse import DBT_PROJECT, REPO, run_dbt

pytestmark = pytest.mark.slow  # real dbt processes

DBT_BIN = Path(sys.executable).parent


def plain_shell(home: Path) -> dict[str, str]:
    """What a new terminal has: PATH (with the venv's dbt on it) and HOME, nothing exported."""
    return {"PATH": f"{DBT_BIN}:/usr/bin:/bin", "HOME": str(home)}


def dbt_in_plain_shell(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    # Artifacts and logs in tmp: dbt_project/target is the manifest Airflow renders the DAG from.
    return subprocess.run(
        ["dbt", *args, "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")],
        cwd=DBT_PROJECT,
        env=plain_shell(tmp),
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`dbt parse` inside dbt_project/ with no variable exported; (its folder, the manifest)."""
    tmp = tmp_path_factory.mktemp("plain-shell")
    result = dbt_in_plain_shell(tmp, "parse")
    assert result.returncode == 0, result.stdout[-3000:]
    return tmp, json.loads((tmp / "target" / "manifest.json").read_text())


def test_dbt_parse_works_from_a_plain_shell(parsed):
    _, manifest = parsed
    assert any(n["resource_type"] == "model" for n in manifest["nodes"].values())


def test_every_env_var_in_the_project_has_a_default():
    """What `dbt parse` on the prod target does not render (the dev and postgres targets) has one too."""
    files = [DBT_PROJECT / "profiles.yml", DBT_PROJECT / "dbt_project.yml"]
    files += [*DBT_PROJECT.glob("models/**/*.sql"), *DBT_PROJECT.glob("models/**/*.yml")]
    files += list(DBT_PROJECT.glob("macros/**/*.sql"))
    calls = [(p.name, m) for p in files for m in re.findall(r"env_var\(([^)]*)\)", p.read_text())]
    assert calls, "the profile reads its paths from env_var"
    without_default = [(name, call) for name, call in calls if "," not in call]
    assert not without_default, without_default


def test_profile_defaults_are_the_stacks_default_paths(monkeypatch):
    from core.settings import get_settings

    for name in ("STACK_DATA_DIR", "WAREHOUSE_DIR", "WAREHOUSE_PATH", "DBT_DEV_PATH"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    profile = (DBT_PROJECT / "profiles.yml").read_text()

    def default(variable: str) -> set[Path]:
        found = re.findall(rf"env_var\('{variable}', '([^']+)'\)", profile)
        assert found, variable
        return {(DBT_PROJECT / value).resolve() for value in found}

    assert default("WAREHOUSE_PATH") == {settings.warehouse_path}
    # the dev file where `python -m stackctl dbt` puts it (core/dbt_cli.py)
    assert default("DBT_DEV_PATH") == {settings.warehouse_dir / "dev.duckdb"}


# --- exposures ------------------------------------------------------------------------------------


def test_exposures_file_is_what_the_superset_assets_give(parsed):
    _, manifest = parsed
    expected = render(exposures(read_assets(ASSETS_DIR), model_relations(manifest)))
    committed = (DBT_PROJECT / EXPOSURES_FILE).read_text()
    assert committed == expected, (
        f"{EXPOSURES_FILE} is out of date with superset/assets/: run `python -m stackctl superset exposures`"
    )


def test_the_exposures_command_repairs_a_file_naming_a_removed_model(tmp_path):
    """`make dbt-exposures` parses without the old file, so a dashboard whose model was renamed
    (which breaks `dbt parse` itself) is fixed by running it; the result is the committed file."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target*", "logs", "dbt_packages"))
    stale = project / EXPOSURES_FILE
    stale.write_text(stale.read_text().replace("ref('kpi_dictionary')", "ref('kpi_glossary')"))
    env = {**plain_shell(tmp_path), "DBT_PROJECT_DIR": str(project), "STACK_ENV_FILE": str(tmp_path / "none.env")}
    command = [sys.executable, "-m", "stackctl", "superset", "exposures"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert stale.read_text() == (DBT_PROJECT / EXPOSURES_FILE).read_text()


def _tables_read(dashboard: dict, assets: dict, relations: dict) -> set[str]:
    """The dbt models a dashboard's datasets read, found without the generator's SQL parser: a
    virtual dataset reads every model whose `schema.name` its SQL mentions."""
    datasets = {
        assets[n["meta"]["uuid"]][1]["dataset_uuid"]
        for n in dashboard["position"].values()
        if isinstance(n, dict) and n.get("type") == "CHART"
    }
    for native_filter in dashboard["metadata"].get("native_filter_configuration", []):
        datasets |= {t["datasetUuid"] for t in native_filter.get("targets", []) if t.get("datasetUuid")}
    models = set()
    for uuid in datasets:
        dataset = assets[uuid][1]
        for (schema, table), model in relations.items():
            if dataset.get("sql"):
                if re.search(rf"\b{schema}\.{table}\b", dataset["sql"], re.IGNORECASE):
                    models.add(model)
            elif (dataset["schema"], dataset["table_name"]) == (schema, table):
                models.add(model)
    return models


def test_each_exposure_depends_on_exactly_the_models_its_dashboard_reads(parsed):
    _, manifest = parsed
    assets = read_assets(ASSETS_DIR)
    relations = model_relations(manifest)
    by_slug = {doc["slug"]: doc for rel, doc in assets.values() if rel.startswith("dashboards/")}
    found = {e["url"].rstrip("/").rsplit("/", 1)[-1]: e for e in manifest["exposures"].values()}
    assert set(found) == set(by_slug), "one exposure per dashboard"
    for slug, dashboard in by_slug.items():
        parents = {manifest["nodes"][u]["name"] for u in found[slug]["depends_on"]["nodes"]}
        assert parents == _tables_read(dashboard, assets, relations), slug
    executive = manifest["exposures"]["exposure.shop_analytics.executive_kpis"]
    assert executive["label"] == by_slug["executive-kpis"]["dashboard_title"]
    assert executive["depends_on"]["nodes"], "the Executive KPIs dashboard reads marts"


def test_dbt_ls_lists_the_models_behind_the_executive_dashboard(parsed):
    tmp, manifest = parsed
    result = dbt_in_plain_shell(
        tmp, "ls", "-s", "+exposure:executive_kpis", "--resource-type", "model", "--output", "name", "--quiet"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    listed = set(result.stdout.split())
    # the exposure's parents and everything upstream of them, from the manifest's graph
    ancestors, todo = set(), list(manifest["parent_map"]["exposure.shop_analytics.executive_kpis"])
    while todo:
        node = todo.pop()
        if node.startswith("model.") and node not in ancestors:
            ancestors.add(node)
            todo.extend(manifest["parent_map"][node])
    assert listed == {manifest["nodes"][u]["name"] for u in ancestors}
    assert len(listed) > len(manifest["exposures"]["exposure.shop_analytics.executive_kpis"]["depends_on"]["nodes"])


# --- make dbt-build SELECT=... --------------------------------------------------------------------


def make_dbt_build(env: dict[str, str], *variables: str, dry_run: bool = False) -> subprocess.CompletedProcess:
    # -o install: the environments exist; never re-sync them from a test
    args = ["make", "--no-print-directory", "-o", "install", *(["-n"] if dry_run else []), "dbt-build", *variables]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)


def test_make_dbt_build_without_select_builds_the_whole_project():
    result = make_dbt_build({"PATH": "/usr/bin:/bin"}, dry_run=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("-m stackctl dbt build"), result.stdout


def test_make_dbt_build_builds_only_the_selection(built, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built.warehouse_path, warehouse)  # the session's fixture warehouse stays as it is
    env_file = tmp_path / ".env"
    ensure_env_file(env_file)
    target = tmp_path / "target"
    env = {
        **built.env,
        "WAREHOUSE_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "STACK_ENV_FILE": str(env_file),
    }
    env.pop("DBT_TARGET", None)
    env.pop("SELECT", None)
    result = make_dbt_build(env, "SELECT=fct_daily_revenue kpi_dictionary")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    built_models = {r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("model.")}
    assert built_models == {"fct_daily_revenue", "kpi_dictionary"}
    assert any(r["unique_id"].startswith("test.") for r in results), "the selection's data tests ran too"
    assert all(r["status"] in {"success", "pass"} for r in results), [
        (r["unique_id"], r["status"]) for r in results if r["status"] not in {"success", "pass"}
    ]


# --- generic tests called as in dbt_utils ---------------------------------------------------------


def test_dbt_utils_style_generic_tests_fail_on_bad_rows(built, tmp_path):
    """`expression_is_true` under a column prefixes the column (dbt_utils' form) and fails a NULL;
    `unique_combination_of_columns` takes `combination_of_columns`."""
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(built.warehouse_path, copy)
    with duckdb.connect(str(copy)) as con:
        days = [
            d for (d,) in con.execute("select revenue_date from marts.fct_daily_revenue order by 1 limit 2").fetchall()
        ]
        # net_revenue_eur: "= gross_revenue_eur - returns_eur": one day off by a euro, one unknowable
        con.execute(
            "update marts.fct_daily_revenue set net_revenue_eur = net_revenue_eur + 1 where revenue_date = ?", [days[0]]
        )
        con.execute("update marts.fct_daily_revenue set returns_eur = null where revenue_date = ?", [days[1]])
        con.execute("insert into marts.fct_daily_marketing_spend select * from marts.fct_daily_marketing_spend limit 1")
    env = {**built.env, "WAREHOUSE_PATH": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target")}
    result = run_dbt(
        env,
        "test",
        "--select",
        "test_name:expression_is_true,fct_daily_revenue",
        "test_name:unique_combination_of_columns,fct_daily_marketing_spend",
        "--vars",
        "{data_tests_scope: all}",
        check=False,
    )
    assert result.returncode != 0, result.stdout[-3000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    failures = {
        r["unique_id"].split(".")[2].split("_fct_")[0]: (r["status"], r["failures"])
        for r in results
        if r["unique_id"].startswith("test.")
    }
    assert failures == {"expression_is_true": ("fail", 2), "unique_combination_of_columns": ("fail", 1)}, failures


# --- MetricFlow -------------------------------------------------------------------------------------


def test_mf_query_answers_from_the_warehouse_without_the_pii_key(built, tmp_path):
    """`mf query` in dbt_project/ (semantic manifest of the last prod parse, warehouse from the profile)
    gives the weekly net revenue the marts hold; the key is not needed to read marts, and hashing
    without it still stops."""
    project = tmp_path / "dbt_project"  # mf reads <cwd>/target/semantic_manifest.json: a copy, not Cosmos'
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target*", "logs", "dbt_packages"))
    (project / "target").mkdir()
    shutil.copy(built.target_path / "semantic_manifest.json", project / "target")
    warehouse = tmp_path / "warehouse" / built.warehouse_path.name  # same file name: same DuckDB catalog
    warehouse.parent.mkdir()
    shutil.copy(built.warehouse_path, warehouse)
    env = {**plain_shell(tmp_path), "WAREHOUSE_PATH": str(warehouse)}

    out = tmp_path / "weekly.csv"
    result = subprocess.run(
        ["mf", "query", "--metrics", "net_revenue_eur", "--group-by", "metric_time__week", "--csv", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and out.exists(), (result.stdout + result.stderr)[-3000:]
    with duckdb.connect() as con:
        answered = con.execute(
            "select cast(metric_time__week as date), net_revenue_eur from read_csv_auto(?) order by 1", [str(out)]
        ).fetchall()
    # the metric is sum(net_revenue_eur) over the semantic model's table, by ISO week (Monday)
    expected = built.query(
        "select cast(date_trunc('week', revenue_date) as date), cast(sum(net_revenue_eur) as double) "
        "from marts.fct_daily_revenue_by_segment group by 1 order by 1"
    )
    assert len(expected) > 1, "several weeks of data"
    assert [week for week, _ in answered] == [week for week, _ in expected]
    for (week, got), (_, want) in zip(answered, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-9), week

    hashed = subprocess.run(
        [
            "dbt",
            "show",
            "--inline",
            "select {{ pseudonymise(\"'someone@example.com'\") }} as h",
            "--log-path",
            str(tmp_path / "logs"),
            "--target-path",
            str(tmp_path / "show-target"),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert hashed.returncode != 0 and "PII_HASH_KEY is not set" in hashed.stdout, hashed.stdout[-2000:]
