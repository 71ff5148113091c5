"""Serve layer: failed Superset logins are throttled per client address and login name.

Loaded by path from `superset_config.py` inside Superset's venv; `install(app, limit)` runs from
`FLASK_APP_MUTATOR`, after Flask-AppBuilder registered its login views. Both ways in are limited:
the login form (`POST /login/`) and the REST login (`POST /api/v1/security/login`, which
Flask-AppBuilder's own `AUTH_RATE_LIMITED` leaves alone).

Why not `AUTH_RATE_LIMITED` alone: it counts every POST (successful logins too) per client
address, so people behind one proxy lock each other out, and it skips the REST login. Here only
failures count, keyed by address *and* login name: after `limit` failures for one name, every
attempt for that name from that address, the right password included, gets HTTP 429 until the
window has passed; other users are not affected.

The counters live in Flask-Limiter's storage (`RATELIMIT_STORAGE_URI`): Redis in cluster mode,
shared by every worker and host; process memory in embedded mode, so each gunicorn worker counts
on its own (with `SUPERSET_WEB_WORKERS` workers an attacker gets at most that many times `limit`).
"""

from __future__ import annotations

from typing import Any


def _login_name() -> str:
    from flask import request

    if request.form:
        name = request.form.get("username", "")
    else:
        body = request.get_json(silent=True)
        name = body.get("username", "") if isinstance(body, dict) else ""
    return str(name).strip().lower()


def login_key() -> str:
    """The counter a login attempt belongs to: client address and login name."""
    from flask_limiter.util import get_remote_address

    return f"login:{get_remote_address()}:{_login_name()}"


def login_failed(response: Any) -> bool:
    """Whether this login attempt failed (only failures use up the allowance)."""
    from flask import request
    from flask_login import current_user

    if response.status_code >= 400:
        return True
    # The form answers a wrong password with a redirect back to the form, not an error code.
    return not request.path.startswith("/api/") and not current_user.is_authenticated


# The two ways in. Found through the URL map: Superset 6 serves GET /login/ from its own view and
# leaves POST to Flask-AppBuilder's, so "the auth view" is not one object.
LOGIN_PATHS = ("/login/", "/api/v1/security/login")


def _login_blueprints(app: Any) -> list[Any]:
    names = {
        rule.endpoint.split(".", 1)[0]
        for rule in app.url_map.iter_rules()
        if rule.rule in LOGIN_PATHS and "POST" in (rule.methods or ())
    }
    if len(names) != len(LOGIN_PATHS):
        raise RuntimeError(f"login throttling: expected a POST handler for each of {LOGIN_PATHS}, found {names}")
    return [app.blueprints[name] for name in sorted(names)]


def install(app: Any, limit: str) -> None:
    """Throttle failed logins to `limit` (e.g. "5 per 5 minutes") on both login endpoints."""
    # One counter for both ways in (a blueprint limit would count each blueprint on its own).
    throttle = app.appbuilder.sm.limiter.shared_limit(
        limit,
        scope="login",
        key_func=login_key,
        methods=["POST"],
        deduct_when=login_failed,
        error_message="Too many failed logins: wait a few minutes and try again",
    )
    for blueprint in _login_blueprints(app):
        throttle(blueprint)
