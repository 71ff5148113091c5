"""Ingestion: everything between a source and the warehouse's `raw` schema.

Sources (`app_db/`, the shop `simulator/` that feeds it), the lake writer (`lake.py`) and the
warehouse loader (`warehouse.py`). Airflow-free: DAGs import these functions and pass the
logical date explicitly.
"""
