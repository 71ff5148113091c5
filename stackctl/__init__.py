"""Operations for the whole stack: credentials, the services (Airflow, Superset, the fake vendor
API) and their processes, cluster mode, and the one command line.

`make` targets call `python -m stackctl <command>` for the stack and `python -m stackctl <area>
<command>` for a package's own commands (quality, partner-files, governance, ml, superset, bench,
dbt-portable). Settings, `.env` handling and the other foundations every package shares live in
`core`.
"""
