"""SQL text for the access log without its literals: the shape of a query, never its values.

A SQL Lab query's literals may be personal data (`where email = 'ana@example.com'`,
`where customer_id = 117`). A regex over quotes misses the other ways SQL writes a string
(DuckDB's `$$...$$` and `$tag$...$tag$`, `E'...'` escapes, comments that hide a quote), so
the query is parsed (sqlglot, DuckDB dialect: SQL Lab runs against DuckDB) and every literal
node is replaced: strings by `'?'`, numbers by `?`. Comments are dropped (free text). A
statement that does not parse (or that sqlglot keeps as raw text) is replaced whole by a
comment giving its length: only that and the tables it names (found separately) are kept.
"""

from __future__ import annotations

import logging

import sqlglot
from sqlglot import exp

# Node types that hold a value written in the query (not an identifier or a keyword).
_VALUE_NODES = (
    exp.Literal,
    exp.RawString,
    exp.ByteString,
    exp.HexString,
    exp.BitString,
    exp.National,
)
UNPARSED = "-- redacted: {n} characters that do not parse as SQL"

# sqlglot logs unsupported syntax as warnings; the fallback below is the answer to it.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


def _redact_node(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Literal) and not node.is_string:
        return exp.Placeholder()
    if isinstance(node, _VALUE_NODES):
        return exp.Literal.string("?")
    return node


def redact_sql(sql: str | None) -> str | None:
    """`sql` with every literal replaced; the whole text replaced when it does not parse."""
    if not sql or not sql.strip():
        return sql
    try:
        statements = sqlglot.parse(sql, read="duckdb")
        out = []
        for statement in statements:
            if statement is None:
                continue
            if isinstance(statement, exp.Command):  # unsupported syntax kept as raw text
                raise sqlglot.errors.ParseError("unsupported statement")
            redacted = statement.transform(_redact_node, copy=True)
            out.append(redacted.sql(dialect="duckdb", comments=False))
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        return UNPARSED.format(n=len(sql))
    return ";\n".join(out)
