"""Which engine builds the marts (`MARTS_ENGINE`), for DAG files that wire tasks differently per mode.

Read when the DAG file is parsed: Spark mode (`spark`) adds the hand-over of Spark's marts to
DuckDB to `elt_marts` and unschedules `churn_model`, whose feature mart is DuckDB-only.
"""

from __future__ import annotations


def marts_on_spark() -> bool:
    from core.settings import get_settings

    return get_settings().marts_engine == "spark"
