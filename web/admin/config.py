"""Admin-page settings. Each is read from the Flask config when set there (tests pass it
there), else from the environment, else the default below (the same rule as tasks/settings.py;
documented in .env.example)."""

from __future__ import annotations

import datetime as dt
import os

from flask import Flask, Request, current_app
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

DEFAULTS: dict[str, str] = {
    # The admin session cookie is Secure (HTTPS only) except in development mode.
    "WORKTEAM_SESSION_COOKIE_SECURE": "",
    "WORKTEAM_ADMIN_SESSION_HOURS": "8",
    # Sign-in attempts per window, per client address and per account (email).
    "WORKTEAM_ADMIN_LOGIN_WINDOW_SECONDS": "300",
    "WORKTEAM_ADMIN_LOGIN_MAX_PER_IP": "20",
    "WORKTEAM_ADMIN_LOGIN_MAX_PER_ACCOUNT": "5",
    # Prefix of the Redis keys of admin sessions and sign-in counters.
    "WORKTEAM_REDIS_KEY_PREFIX": "workteam",
    # The banner "no worker is running" shows when the last heartbeat is older than this.
    "WORKTEAM_WORKER_HEARTBEAT_MAX_AGE": "60",
    # Largest IdP export accepted for a re-sync upload.
    "WORKTEAM_RESYNC_MAX_EXPORT_BYTES": str(64 * 1024 * 1024),
    "WORKTEAM_ADMIN_PAGE_SIZE": "50",
}


def get(name: str, app: Flask | None = None) -> str:
    config = (app or current_app).config
    value = config.get(name)
    if value not in (None, ""):
        return str(value)
    return os.environ.get(name) or DEFAULTS[name]


def get_int(name: str, app: Flask | None = None) -> int:
    return int(get(name, app))


class AdminSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, for the admin pages only. A SCIM request authenticates
    with its bearer token and never uses the session, so it gets Flask's null session: no
    cookie parsed, no serializer built, nothing saved or signed after the response."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/scim/"):
            return None  # Flask then uses make_null_session
        return super().open_session(app, request)


def apply_session_settings(app: Flask) -> None:
    """The admin session (``AdminSessions``) and Flask's own session keys (their Flask
    defaults are unsafe here: a 31-day, non-Secure cookie named "session"), from the
    WORKTEAM_* settings above."""
    raw = get("WORKTEAM_SESSION_COOKIE_SECURE", app)
    secure = (
        raw.lower() in ("1", "true", "yes", "on")
        if raw
        else (app.config.get("WORKTEAM_ENV") != "development")
    )
    app.session_interface = AdminSessions()
    app.config["SESSION_COOKIE_SECURE"] = secure
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # __Host-: the browser refuses it without Secure, from another path, or for a subdomain.
    app.config["SESSION_COOKIE_NAME"] = "__Host-workteam_admin" if secure else "workteam_admin"
    app.config["SESSION_COOKIE_PATH"] = "/"
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(
        hours=get_int("WORKTEAM_ADMIN_SESSION_HOURS", app)
    )
    # CSRF tokens live as long as the session; Flask-WTF's default of 1 h would fail forms
    # left open in a tab.
    app.config["WTF_CSRF_TIME_LIMIT"] = None
