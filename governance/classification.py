"""The classification of every landed column, gathered from the source contracts.

Each source declares it where the data is created: `ingestion/app_db/contract.py`,
`ingestion/partner_files/contracts.py`, `ingestion/marketing_api/contract.py`. The result maps
`raw.<table>` -> column -> {"classification": public|internal|pii, "pii_kind": ...}.
"""

from __future__ import annotations

Classification = dict[str, dict[str, dict[str, str | None]]]


def _split(tag: str) -> dict[str, str | None]:
    level, _, kind = tag.partition(":")
    return {"classification": level, "pii_kind": kind or None}


def app_db_classification() -> Classification:
    from ingestion.app_db.contract import CONTRACTS

    return {
        f"raw.{name}": {column: _split(contract.classification_of(column)) for column in contract.columns}
        for name, contract in CONTRACTS.items()
    }


def marketing_api_classification() -> Classification:
    """The vendor API carries no personal data: campaign-level aggregates and rates."""
    from ingestion.marketing_api import contract

    out: Classification = {}
    for table, schema in _marketing_tables(contract).items():
        out[f"raw.{table}"] = {name: {"classification": "internal", "pii_kind": None} for name in schema.names}
    return out


def _marketing_tables(contract_module) -> dict:
    tables = {}
    for value in vars(contract_module).values():
        table = getattr(value, "table", None)
        schema = getattr(value, "arrow_schema", None) or getattr(value, "schema", None)
        if isinstance(table, str) and schema is not None and hasattr(schema, "names"):
            tables[table] = schema
    return tables


def all_sources() -> Classification:
    from ingestion.partner_files.contracts import column_classification

    return {**app_db_classification(), **marketing_api_classification(), **column_classification()}
