"""The sources' Airflow Connections, read when a task runs, handed to ingestion/ as plain values.

`app_db` (sqlite or postgres) and `marketing_api` (http, the API token as its password) come from
wherever Airflow finds them first: a configured secrets backend, AIRFLOW_CONN_APP_DB /
AIRFLOW_CONN_MARKETING_API (which `python -m stackctl` builds from .env for every Airflow process),
or the metadata DB (Admin -> Connections). Reading a connection through Airflow registers its
password with the task log masker, so the token appears as *** in the task logs of scheduled runs.
(`airflow dags test` runs tasks inside the CLI process, whose console Airflow 3.3 does not mask.)

Without the connection (an `airflow` started by hand without the stack's environment), the tasks use
what the code reads outside Airflow: APP_DB_URL, MARKETING_API_URL / MARKETING_API_TOKEN; the log says so.
"""

from __future__ import annotations

import dataclasses
import logging

from core.settings import Settings
from ingestion.app_db.connection import CONN_ID as APP_DB_CONN_ID
from ingestion.app_db.connection import url_from_connection
from ingestion.marketing_api.client import CONN_ID as MARKETING_API_CONN_ID
from ingestion.marketing_api.client import ClientConfig, MarketingApiAuthError, base_url_from_connection

log = logging.getLogger(__name__)


def connection_fields(conn_id: str) -> dict | None:
    """The connection's fields as a plain dict (extra parsed), or None when Airflow has no such connection."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return {
        "conn_type": conn.conn_type,
        "host": conn.host,
        "port": conn.port,
        "login": conn.login,
        "password": conn.password,
        "schema": conn.schema,
        "extra": conn.extra_dejson,
    }


def with_app_db(settings: Settings) -> Settings:
    """`settings` with the app DB of the `app_db` connection (APP_DB_URL's when there is none)."""
    fields = connection_fields(APP_DB_CONN_ID)
    if fields is None:
        log.warning("no Airflow connection %r: reading the app DB at APP_DB_URL", APP_DB_CONN_ID)
        return settings
    return dataclasses.replace(settings, app_db_url=url_from_connection(fields))


def marketing_api_config() -> ClientConfig:
    """The API client's settings: URL and token from the `marketing_api` connection, limits from the
    environment (MARKETING_API_URL / MARKETING_API_TOKEN when there is no connection)."""
    fields = connection_fields(MARKETING_API_CONN_ID)
    if fields is None:
        log.warning("no Airflow connection %r: using MARKETING_API_URL / MARKETING_API_TOKEN", MARKETING_API_CONN_ID)
        return ClientConfig.from_env()
    if not fields["password"]:
        raise MarketingApiAuthError(
            f"the Airflow connection {MARKETING_API_CONN_ID!r} has no password: put the API token there"
        )
    return ClientConfig.from_env(base_url=base_url_from_connection(fields), token=fields["password"])
