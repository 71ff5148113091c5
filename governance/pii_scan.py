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
# International format (+CC ...): bare digit strings are ids, hashes and amounts, not phones.
PHONE_REGEX = r"^\+\d{1,3}[ -]?\(?\d[\d ()-]{5,}\d$"
# Role mailboxes of the organisation (KPI owners such as finance@shop.example) are not personal.
DEFAULT_ORG_EMAIL_DOMAINS = ("shop.example",)


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    what: str
    rows: int
    example: str


def scan(
    path: Path, known_values: Iterable[str] = (), org_email_domains: Iterable[str] = DEFAULT_ORG_EMAIL_DOMAINS
) -> list[Hit]:
    """Every text column of every table in `path` checked for PII shapes and known values."""
    org_domains = [d.lower() for d in org_email_domains]
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
                "e-mail shaped values": f"regexp_matches({col}, '{EMAIL_REGEX}') "
                f"and lower(split_part({col}, '@', 2)) not in (select unnest(?::varchar[]))",
                "phone shaped values": f"regexp_matches({col}, '{PHONE_REGEX}')",
                "known personal values": f"{col} in (select value from known)",
            }
            for what, predicate in checks.items():
                params = [org_domains] if "unnest" in predicate else []
                count, example = con.execute(
                    f"select count(*), any_value({col}) from {ref} where {predicate}", params
                ).fetchone()
                if count:
                    hits.append(Hit(f"{schema}.{table}", column, what, count, str(example)[:3] + "..."))
    return hits
