"""Classification travels from the source contracts into dbt (and so into the catalog).

The contracts (`ingestion/*/contract*.py`) say at creation which landed columns are personal.
dbt's source YAML carries the same facts as column `meta.classification` / `meta.pii_kind` and
`tags: [pii]`, which the dbt docs catalog shows and `dbt ls --select tag:pii` lists. This test
keeps the two in step: a column the contract calls PII must be tagged PII in dbt with the same
kind (so it must be documented there), and a column dbt calls PII must be PII in the contract.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from governance.classification import all_sources

STAGING = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "staging"


def _dbt_source_columns() -> dict[str, dict[str, dict]]:
    """`raw.<table>` -> column -> its YAML entry, for every dbt source table in schema raw."""
    out: dict[str, dict[str, dict]] = {}
    for path in STAGING.glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            if source.get("schema", "raw") != "raw":
                continue
            for table in source.get("tables", []):
                name = table.get("identifier", table["name"])
                out[f"raw.{name}"] = {column["name"]: column for column in table.get("columns", [])}
    return out


def test_pii_in_the_contracts_is_pii_in_dbt_and_back():
    contracts = all_sources()
    dbt = _dbt_source_columns()
    shared = sorted(set(contracts) & set(dbt))
    assert len(shared) >= 6, f"expected the shop's tables in both, got {shared}"
    problems = []
    for table in shared:
        for column, label in contracts[table].items():
            entry = dbt[table].get(column)
            if entry is None:
                if label["classification"] == "pii":
                    problems.append(f"{table}.{column}: PII in the contract, missing from dbt's source YAML")
                continue
            meta, tags = entry.get("meta") or {}, entry.get("tags") or []
            if label["classification"] == "pii":
                if meta.get("classification") != "pii" or "pii" not in tags:
                    problems.append(f"{table}.{column}: PII in the contract, not tagged pii in dbt")
                elif meta.get("pii_kind") != label["pii_kind"]:
                    kinds = f"{meta.get('pii_kind')} in dbt, {label['pii_kind']} in the contract"
                    problems.append(f"{table}.{column}: pii_kind {kinds}")
            elif meta.get("classification") == "pii" or "pii" in tags:
                problems.append(f"{table}.{column}: tagged pii in dbt, {label['classification']} in the contract")
    assert not problems, "\n".join(problems)
