"""Admin sign-in: sessions, CSRF, rate limits, the signed-in admin.

Sessions are Flask's signed cookie (Secure, HttpOnly, SameSite=Lax, a lifetime) carrying only
a random session id; the id is also a Redis key, so sign-out and deactivation end the session
at once on the server, not just in this browser. Every request re-reads the admin's row: a user
deactivated or no longer admin is signed out at their next click.

CSRF: Flask-WTF's signed, time-limited token bound to the session (``validate_csrf``), checked
on every unsafe method of the admin blueprint only (the SCIM API uses bearer tokens, no
cookies, so it needs none). Forms send ``csrf_token``; the JSON endpoints ``X-CSRFToken``.

Sign-in attempts are counted in Redis per client address and per account (fixed windows); past
the limit the form answers 429 without checking the password.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf

if TYPE_CHECKING:
    import redis
from sqlalchemy import func, or_, select

from models.organization import Organization
from models.passwords import hash_password, verify_password
from models.user import User
from web import database
from web.admin import config as cfg

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Checked when no account matches, so a wrong email costs as much time as a wrong password.
_DUMMY_HASH = hash_password("not-a-password", memory_kib=1024, time_cost=1)


def redis_client() -> redis.Redis:
    client = current_app.extensions.get("admin.redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=1
        )
        current_app.extensions["admin.redis"] = client
    return client


def _key(*parts: str) -> str:
    return ":".join((cfg.get("WORKTEAM_REDIS_KEY_PREFIX"), "admin", *parts))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


# --- CSRF ----------------------------------------------------------------------------------


def csrf_token() -> str:
    return generate_csrf()


def check_csrf() -> None:
    if request.method in SAFE_METHODS:
        return
    # Belt and braces with SameSite=Lax: a browser's Origin, when sent, must be this site.
    origin = request.headers.get("Origin")
    public = urlsplit(current_app.config["PUBLIC_URL"])
    allowed = {request.host_url.rstrip("/"), f"{public.scheme}://{public.netloc}"}
    if origin and origin.rstrip("/") not in allowed:
        raise CSRFError("cross-origin request")
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken", "")
    try:
        validate_csrf(token)
    except Exception as exc:  # ValidationError: missing, expired, or not this session's
        raise CSRFError(str(exc)) from None


# --- rate limit ----------------------------------------------------------------------------


def _hit(key: str, window: int) -> int:
    client = redis_client()
    slot = f"{key}:{int(time.time()) // window}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(slot)
    pipe.expire(slot, window + 5)
    return int(pipe.execute()[0])


def sign_in_allowed(email: str) -> bool:
    """Count this attempt against the client's address and the account."""
    window = cfg.get_int("WORKTEAM_ADMIN_LOGIN_WINDOW_SECONDS")
    per_ip = _hit(_key("login", "ip", _digest(request.remote_addr or "-")), window)
    per_account = _hit(_key("login", "account", _digest(email.strip().lower())), window)
    return per_ip <= cfg.get_int("WORKTEAM_ADMIN_LOGIN_MAX_PER_IP") and per_account <= cfg.get_int(
        "WORKTEAM_ADMIN_LOGIN_MAX_PER_ACCOUNT"
    )


# --- accounts ------------------------------------------------------------------------------


def admin_candidates(email: str) -> list[User]:
    """Active admin users whose userName or primary email is ``email``, any organization."""
    email = email.strip().lower()
    return list(
        database.session().scalars(
            select(User)
            .where(
                User.is_admin.is_(True),
                User.active.is_(True),
                or_(func.lower(User.user_name) == email, func.lower(User.primary_email) == email),
            )
            .order_by(User.created)
            .limit(20)
        )
    )


def authenticate(email: str, password: str) -> list[User]:
    """The candidate admins whose password matches (several when one person administers more
    than one organization with the same email and password)."""
    candidates = admin_candidates(email)
    if not candidates:
        verify_password(_DUMMY_HASH, password)
        return []
    return [user for user in candidates if verify_password(user.password_hash, password)]


# --- sessions ------------------------------------------------------------------------------


def start_session(user: User) -> None:
    """A fresh session (no fixation): new id, new CSRF secret, server-side record."""
    session.clear()
    sid = secrets.token_urlsafe(32)
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    redis_client().set(_key("session", _digest(sid)), str(user.id), ex=lifetime)
    session.permanent = True
    session["sid"] = sid
    session["uid"] = str(user.id)
    session["org"] = str(user.org_id)


def end_session() -> None:
    sid = session.get("sid")
    if sid:
        try:
            redis_client().delete(_key("session", _digest(sid)))
        except Exception:  # the cookie is cleared anyway; the key expires on its own
            current_app.logger.warning("could not delete an admin session key")
    session.clear()


def load_admin() -> User | None:
    """The signed-in admin of this request, or None (and the session cleared)."""
    if "admin" in g:
        return g.admin
    g.admin = None
    sid, uid = session.get("sid"), session.get("uid")
    if not sid or not uid:
        return None
    stored = redis_client().get(_key("session", _digest(sid)))
    if stored != uid.encode():  # None when the session expired or was ended
        session.clear()
        return None
    user = database.session().get(User, uuid.UUID(uid))
    if (
        user is None
        or not user.active
        or not user.is_admin
        or str(user.org_id) != session.get("org")
    ):
        end_session()
        return None
    g.admin = user
    return user


def current_org() -> Organization:
    admin = g.admin
    org = database.session().get(Organization, admin.org_id)
    if org is None:
        abort(404)
    return org


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if load_admin() is None:
            if request.path.startswith("/admin/api/"):
                abort(401)
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def safe_next(target: str | None) -> str:
    """Only same-site admin paths: no open redirect through ``next``."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin.settings")
