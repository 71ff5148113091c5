"""Airflow local settings for cluster mode: loaded by every Airflow process (scheduler, workers, tasks).

Only one thing here, a compatibility shim. The locked Celery provider (apache-airflow-providers-celery
3.26.0) imports `retry` from `celery.backends.database`, which Celery 5.7.0 (also locked) no
longer has: without this, the CeleryExecutor fails to import and no task is ever queued. The shim
puts back the decorator Celery <= 5.6 had (retry a result-backend query on a transient database
error). Remove this folder from `stackctl/cluster.py` once the lock pins `celery<5.7` or the
provider stops importing it.

Cluster mode puts this folder on PYTHONPATH (`stackctl/cluster.py`); embedded mode never loads it.
"""

from __future__ import annotations

import functools
import logging


def _restore_celery_database_retry() -> None:
    try:
        import celery.backends.database as database
    except ImportError:  # no Celery: nothing to fix
        return
    if hasattr(database, "retry"):
        return
    errors = getattr(database, "RETRYABLE_DB_ERRORS", (database.DatabaseError,))
    log = logging.getLogger("celery.backends.database")

    def retry(fun):
        @functools.wraps(fun)
        def _inner(*args, **kwargs):
            max_retries = kwargs.pop("max_retries", 3)
            for attempt in range(max_retries):
                try:
                    return fun(*args, **kwargs)
                except errors:
                    if attempt + 1 >= max_retries:
                        raise
                    log.warning("%s failed, retrying (%d left)", fun.__name__, max_retries - attempt - 1)
            return None

        return _inner

    database.retry = retry


_restore_celery_database_retry()
