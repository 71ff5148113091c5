"""Airflow plugin: installs the login throttle (stackctl/login_throttle.py) in the API server.

Airflow loads every module of its plugins folder (`AIRFLOW__CORE__PLUGINS_FOLDER`, set by
`stackctl.airflow_service.airflow_env` to this folder). Limits come from the environment:
`AIRFLOW_LOGIN_MAX_FAILURES` (5 per user and address), `AIRFLOW_LOGIN_ADDRESS_MAX_FAILURES` (20 per
address), `AIRFLOW_LOGIN_WINDOW_SECONDS` (300).
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

from stackctl.login_throttle import LoginThrottle


def _state_file() -> str:
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return str(Path(home) / "login_failures.db")


class LoginThrottlePlugin(AirflowPlugin):
    name = "login_throttle"
    fastapi_root_middlewares = [  # noqa: RUF012 - Airflow reads this class attribute
        {
            "middleware": LoginThrottle,
            "kwargs": {
                "state_file": _state_file(),
                "max_failures": int(os.environ.get("AIRFLOW_LOGIN_MAX_FAILURES", "5")),
                "address_max_failures": int(os.environ.get("AIRFLOW_LOGIN_ADDRESS_MAX_FAILURES", "20")),
                "window": float(os.environ.get("AIRFLOW_LOGIN_WINDOW_SECONDS", "300")),
            },
            "name": "login throttle",
        }
    ]
