"""Search a DuckDB file for personal data: e-mail/phone shapes and known identifiers.

Used to prove that the serving file (and so every Superset dataset) holds no direct identifiers:
every text column is checked for values shaped like an e-mail address or a phone number, and,
given the real identifiers (e.g. all customers' e-mails, names and phones from the app DB), for
any exact occurrence of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
PHONE_REGEX = r"^\+?\d[\d ()./-]{7,}\d$"


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    what: str
    rows: int
    example: str


def scan(path: Path, known_values: Iterable[str] = ()) -> list[Hit]:
    """Every text column of every table in `path` checked for PII shapes and known values."""
    hits: list[Hit] = []
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("create temp table known (value varchar)")
        known = [(v,) for v in {str(v) for v in known_values if v}]
        if known:
            con.executemany("insert into known values (?)", known)
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_schema not in ('temp', 'information_schema', 'pg_catalog') "
            "and table_catalog = current_database() order by all"
        ).fetchall()
        for schema, table, column in columns:
            ref = f'"{schema}"."{table}"'
            col = f'"{column}"'
            checks = {
                "e-mail shaped values": f"regexp_matches({col}, '{EMAIL_REGEX}')",
                "phone shaped values": f"regexp_matches({col}, '{PHONE_REGEX}')",
                "known personal values": f"{col} in (select value from known)",
            }
            for what, predicate in checks.items():
                count, example = con.execute(
                    f"select count(*), any_value({col}) from {ref} where {predicate}"
                ).fetchone()
                if count:
                    hits.append(Hit(f"{schema}.{table}", column, what, count, str(example)[:3] + "..."))
    return hits
