"""One SQLAlchemy session per request, closed at teardown; no hidden commits.

A SCIM user read (GET) runs in autocommit mode: it writes nothing, and under READ COMMITTED each
statement sees its own snapshot anyway, so a transaction would only add a BEGIN and a ROLLBACK
round trip to every lookup (two of the five an IdP's `userName eq` lookup used to make).
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from models.db import make_engine, make_session_factory


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], pool_size=app.config["DB_POOL_SIZE"])
    app.extensions["db.engine"] = engine
    app.extensions["db.sessions"] = make_session_factory(engine)
    from web.scim.auth import watch_credentials

    watch_credentials(app.extensions["db.sessions"], app.config["RATE_LIMIT_REDIS_URL"])
    app.extensions["db.read_sessions"] = make_session_factory(
        engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The current request's (or task's) session, opened on first use."""
    ctx = g._get_current_object()  # once: a proxy access costs ~1-2 µs
    found = ctx.get("db_session")
    if found is None:
        factory = "db.read_sessions" if _scim_read() else "db.sessions"
        found = ctx.db_session = current_app.extensions[factory]()
    return found


# The user reads an IdP makes (its lookup by userName, a GET by id) run in autocommit. Group
# reads do not: they stream members through a server-side cursor, which needs a transaction.
AUTOCOMMIT_ENDPOINTS = frozenset({"scim.list_users", "scim.get_user"})


def _scim_read() -> bool:
    if not has_request_context():
        return False
    req = request._get_current_object()
    return req.method in ("GET", "HEAD") and req.endpoint in AUTOCOMMIT_ENDPOINTS


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
