"""The internal source: the shop's operational database (SQLite by default, PostgreSQL by URL)."""
