"""Serving: the audited marts that dashboards read, published as a separate DuckDB file."""
