"""Governance: what personal data we hold, where, and proof that it does not leak.

`classification` collects every source column's classification from the source contracts (the
one place it is declared, at creation); `pii_check` fails when a column that looks personal is
not tagged; `pii_scan` searches a DuckDB file (e.g. the serving file) for personal values.
"""
