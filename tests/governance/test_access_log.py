"""Access logging: Airflow's audit log and the governance audit log land in `ops.access_log` once, within
the configured retention, without the payloads that can carry personal data. (Superset's logs are
collected from a real Superset in tests/superset/test_superset_assets.py.)

Airflow's `log` table is created from Airflow's own model and written through its ORM class, as
the API server writes it when someone triggers or pauses a DAG.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from governance import access_log, audit
from stackctl.settings import Settings


def _airflow_log(path: Path, rows: list[dict]) -> str:
    import sqlalchemy as sa
    from airflow.models.log import Log
    from sqlalchemy.orm import Session

    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    Log.__table__.create(engine)
    with Session(engine) as session:
        for row in rows:
            entry = Log(row["event"], owner=row["owner"], extra=row.get("extra"), dag_id=row["dag_id"])
            entry.dttm = row["dttm"].replace(tzinfo=dt.UTC)
            session.add(entry)
        session.commit()
    engine.dispose()
    return url


def _access_log(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select source, actor, action, object_type, object_name, detail, outcome from ops.access_log order by 1, 3"
        ).fetchall()


def test_airflow_and_governance_actions_are_collected_once_within_retention(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime(2026, 11, 25, 12, 0)
    url = _airflow_log(
        tmp_path / "airflow.db",
        [
            {
                "event": "trigger",
                "owner": "ops_engineer",
                "dag_id": "data_subject_requests",
                "dttm": now - dt.timedelta(days=1),
                "extra": '{"conf": {"email": "ana.subject@example.com"}}',
            },
            {"event": "paused", "owner": "ops_engineer", "dag_id": "shop_daily", "dttm": now - dt.timedelta(days=60)},
        ],
    )
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{tmp_path / 'no-superset-here.db'}")
    monkeypatch.setenv("ACCESS_LOG_RETENTION_DAYS", "30")
    monkeypatch.setenv("GOVERNANCE_ACTOR", "dpo@shop.example")
    audit.record(stack, "dsr_erase", "dsr-erase-1", "completed", subject=audit.subject_hash("customer_id", 7))

    assert access_log.collect(stack, now=now) == {"superset": 0, "airflow": 1, "governance": 1}
    assert access_log.collect(stack, now=now) == {"superset": 0, "airflow": 1, "governance": 1}, "idempotent"
    rows = _access_log(stack)
    assert rows == [
        ("airflow", "ops_engineer", "trigger", "dag", "data_subject_requests", None, None),
        ("governance", "dpo@shop.example", "dsr_erase", "data_subject_request", "dsr-erase-1", "{}", "completed"),
    ]
    assert "ana.subject" not in repr(rows), "a trigger's conf (Airflow's `extra`) is never copied"

    # 40 days on, the events are past the 30-day retention (the governance log itself keeps them).
    assert access_log.collect(stack, now=now + dt.timedelta(days=40)) == {"superset": 0, "airflow": 0, "governance": 0}
    assert len(audit.entries(stack)) == 1


def test_sql_literals_are_redacted_and_tables_found() -> None:
    sql = "select * from marts.fct_daily_revenue r join MARTS.\"dim_dates\" d on true where note = 'it''s ana@x.org'"
    assert access_log.redact_sql(sql).endswith("where note = '?'")
    assert access_log.tables_in_sql(sql) == "marts.dim_dates,marts.fct_daily_revenue"


def test_missing_metadata_databases_are_skipped(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{tmp_path / 'none-either.db'}")
    assert access_log.collect(stack) == {"superset": 0, "airflow": 0, "governance": 0}
    assert not (tmp_path / "none.db").exists(), "collecting never creates a service's database"
