"""Each domain's knobs are validated where they are read: a value the stack cannot use is a
`SettingError` naming the variable (which commands print as one line), never a traceback from
`int()`/`float()` deep inside a task; unset, each knob has its documented default."""

from __future__ import annotations

import pytest

from core.settings import SettingError


def _ml():
    from ml.settings import ml_settings

    return ml_settings()


def _marketing_client():
    from ingestion.marketing_api.client import ClientConfig

    return ClientConfig.from_env(token="test-token")


def _freshness():
    from quality.settings import refuse_retired_freshness_settings

    return refuse_retired_freshness_settings()


def _chunk_rows():
    from quality.settings import gate1_chunk_rows

    return gate1_chunk_rows()


def _stale_days():
    from governance.settings import stale_after_days

    return stale_after_days()


def _grace_days():
    from governance.settings import stale_grace_days

    return stale_grace_days()


def _retention_days():
    from governance.settings import access_log_retention_days

    return access_log_retention_days()


BAD_VALUES = [
    ("CHURN_PSI_THRESHOLD", "high", _ml),
    ("CHURN_MIN_AUC", "1.5", _ml),
    ("CHURN_SEED", "-1", _ml),
    ("MARKETING_API_RPS", "fast", _marketing_client),
    ("MARKETING_API_REQUEST_DEADLINE", "nan", _marketing_client),
    ("MARKETING_API_MAX_RESPONSE_BYTES", "50MB", _marketing_client),
    # retired: any value is refused, pointing at the dbt source YAMLs where the SLAs live now
    ("FRESHNESS_DEFAULT_SLA_HOURS", "30", _freshness),
    ("FRESHNESS_SLA_HOURS", "shop=30", _freshness),
    ("GATE1_CHUNK_ROWS", "0", _chunk_rows),
    ("STALE_AFTER_DAYS", "1e3", _stale_days),
    ("STALE_GRACE_DAYS", "-1", _grace_days),
    ("ACCESS_LOG_RETENTION_DAYS", "forever", _retention_days),
]


@pytest.mark.parametrize(("variable", "value", "read"), BAD_VALUES, ids=[f"{v}={x}" for v, x, _ in BAD_VALUES])
def test_a_bad_value_is_an_error_naming_the_variable(monkeypatch, variable, value, read):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=variable) as raised:
        read()
    assert "\n" not in str(raised.value)


def test_unset_knobs_take_their_documented_defaults(monkeypatch):
    for variable, _, _ in BAD_VALUES:
        monkeypatch.delenv(variable, raising=False)
    ml = _ml()
    assert (ml.psi_threshold, ml.max_model_age_days, ml.min_auc, ml.seed) == (0.2, 28, 0.6, 42)
    client = _marketing_client()
    assert (client.requests_per_second, client.request_deadline) == (15.0, 60.0)
    assert _freshness() is None  # no retired freshness variable set: nothing to refuse
    assert (_chunk_rows(), _stale_days(), _grace_days(), _retention_days()) == (1_000_000, 30, 30, 365)


def test_a_switched_off_rate_limit(monkeypatch):
    monkeypatch.setenv("MARKETING_API_RPS", "0")
    assert _marketing_client().requests_per_second is None
