"""Access logging: the governance audit log lands in `ops.access_log` once, within the configured
retention; SQL text keeps its shape but none of its literals; an Airflow that is set up but not
answering fails the collection instead of leaving its events out silently. (Airflow's events are
collected through its REST API from a real scheduler in test_governance_dags_scheduled.py, and
Superset's logs from a real Superset in tests/superset/test_superset_assets.py.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from core.settings import Settings
from governance import access_log, airflow_audit, audit
from stackctl.procs import free_port


def _access_log(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select source, actor, action, object_type, object_name, detail, outcome from ops.access_log order by 1, 3"
        ).fetchall()


def test_governance_actions_are_collected_once_within_retention(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for name in ("AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)  # no Airflow set up here: no Airflow events
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{tmp_path / 'no-superset-here.db'}")
    monkeypatch.setenv("ACCESS_LOG_RETENTION_DAYS", "30")
    monkeypatch.setenv("GOVERNANCE_ACTOR", "dpo@shop.example")
    audit.record(stack, "dsr_erase", "dsr-erase-1", "completed", subject=audit.subject_hash("customer_id", 7))

    assert access_log.collect(stack, now=now) == {"superset": 0, "airflow": 0, "governance": 1}
    assert access_log.collect(stack, now=now) == {"superset": 0, "airflow": 0, "governance": 1}, "idempotent"
    assert _access_log(stack) == [
        ("governance", "dpo@shop.example", "dsr_erase", "data_subject_request", "dsr-erase-1", "{}", "completed"),
    ]
    # 40 days on, the events are past the 30-day retention (the governance log itself keeps them).
    assert access_log.collect(stack, now=now + dt.timedelta(days=40)) == {"superset": 0, "airflow": 0, "governance": 0}
    assert len(audit.entries(stack)) == 1


def test_an_airflow_that_does_not_answer_fails_the_collection(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_ADMIN_USER", "admin")
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "pw")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(airflow_audit.AirflowAuditUnavailable, match="not answering"):
        access_log.collect(stack)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "select * from marts.fct_daily_revenue r join MARTS.\"dim_dates\" d on true where note = 'it''s ana@x.org'",
            "SELECT * FROM marts.fct_daily_revenue AS r JOIN MARTS.\"dim_dates\" AS d ON TRUE WHERE note = '?'",
        ),
        ("select * from marts.c where e = $$ana@example.com$$", "SELECT * FROM marts.c WHERE e = '?'"),
        ("select * from t where e = $x$ana@example.com$x$ and id = 117", "SELECT * FROM t WHERE e = '?' AND id = ?"),
        ("select * from t where e = E'ana\\'@example.com'", "SELECT * FROM t WHERE e = '?'"),
        ("select 1 -- ana@example.com\n/* ana@example.com */", "SELECT ?"),
        ("select * from t where e = 'ana@example.com", "-- redacted: 42 characters that do not parse as SQL"),
    ],
)
def test_sql_literals_are_redacted(sql: str, expected: str) -> None:
    redacted = access_log.redact_sql(sql)
    assert redacted == expected
    assert "ana" not in redacted and "117" not in redacted


def test_a_statement_that_does_not_parse_is_redacted_whole() -> None:
    assert access_log.redact_sql("select 'a' || x'0a', 'ana@example.com'") == (
        "-- redacted: 38 characters that do not parse as SQL"
    )
    assert access_log.tables_in_sql('select * from marts.x join MARTS."Y"') == "marts.x,marts.y"


def test_missing_services_are_skipped(stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERSET_METADATA_URI", f"sqlite:///{tmp_path / 'none-either.db'}")
    assert access_log.collect(stack) == {"superset": 0, "airflow": 0, "governance": 0}
    assert not (tmp_path / "none-either.db").exists(), "collecting never creates a service's database"
