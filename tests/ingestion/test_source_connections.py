"""The sources as Airflow Connections: the fields stackctl writes give back the URL and token the code uses.

`python -m stackctl` turns APP_DB_URL and MARKETING_API_URL / _TOKEN into AIRFLOW_CONN_APP_DB and
AIRFLOW_CONN_MARKETING_API; the DAGs turn the connection Airflow hands them back into a URL and a
token. A value lost or mangled on the way (a password with `@` or `/`, PostgreSQL's driver, an
API under a path) would point a task at another database or API.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import make_url

from ingestion.app_db.connection import AppDbError, connection_fields, url_from_connection
from ingestion.marketing_api import client


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////srv/shop/appdb/shop.sqlite",
        "sqlite:///./appdb/shop.sqlite",
        "postgresql+psycopg://shop:p%40ss%2Fw%3Ard@db.internal:5433/shop?sslmode=require",
        "postgresql://reader@127.0.0.1/shop",
    ],
)
def test_the_app_db_url_survives_the_connection(url):
    fields = json.loads(json.dumps(connection_fields(url)))  # what AIRFLOW_CONN_APP_DB holds
    assert make_url(url_from_connection(fields)) == make_url(url)


def test_the_app_db_connection_has_airflows_own_fields():
    assert connection_fields("sqlite:////srv/appdb/shop.sqlite") == {
        "conn_type": "sqlite",
        "host": "/srv/appdb/shop.sqlite",
    }
    fields = connection_fields("postgresql+psycopg://shop:secret@db.internal:5433/shop")
    assert fields["conn_type"] == "postgres" and fields["password"] == "secret" and fields["schema"] == "shop"
    # Typed into Airflow's UI, without our extra: PostgreSQL through psycopg 3, the driver installed.
    typed = {"conn_type": "postgres", "host": "db", "login": "shop", "password": "pw", "schema": "shop"}
    assert url_from_connection(typed) == "postgresql+psycopg://shop:pw@db/shop"
    with pytest.raises(AppDbError, match="host"):
        url_from_connection({"conn_type": "sqlite"})


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (
            "http://127.0.0.1:8090",
            {"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": 8090, "password": "tok-en"},
        ),
        (
            "https://api.vendor.example/marketing",
            {
                "conn_type": "http",
                "schema": "https",
                "host": "api.vendor.example",
                "password": "tok-en",
                "extra": {"base_path": "/marketing"},
            },
        ),
    ],
)
def test_the_marketing_api_is_an_http_connection_with_the_token_as_password(url, fields):
    assert client.connection_fields(url, "tok-en") == fields
    assert client.base_url_from_connection(fields) == url


def test_a_connection_typed_as_airflows_http_hook_takes_it():
    # A host holding the scheme is the base, as Airflow's HTTP hook reads it.
    assert client.base_url_from_connection({"host": "https://api.vendor.example"}) == "https://api.vendor.example"
    with pytest.raises(client.MarketingApiError, match="no host"):
        client.base_url_from_connection({"conn_type": "http"})
