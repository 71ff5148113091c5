"""Shared DAG wiring: defaults, callbacks, Assets and the dbt (Cosmos) configuration.

Not a DAG folder: `.airflowignore` keeps the DAG processor out of it.
"""
