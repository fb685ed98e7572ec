"""One SQLAlchemy session per request, closed at teardown; no hidden commits.

A SCIM user read (GET) runs in autocommit mode: it writes nothing, and under READ COMMITTED each
statement sees its own snapshot anyway, so a transaction would only add a BEGIN and a ROLLBACK
round trip to every lookup (two of the five an IdP's `userName eq` lookup used to make).
The `userName eq` lookup, one Core statement, takes a plain autocommit connection
(``autocommit_connection``), and a cached credential needs no session either, so a lookup opens
no ORM session at all: the session and its transaction object were 7.6 % of its instructions.
A create is one statement too (models/store.py) and takes the same connection, as do a GET
by id, a PATCH that only sets ``active``, and any other PATCH or a PUT (a read, then the write
in one statement): each statement is its own transaction. Autocommit connections come from
their own pool (``db.autocommit_engine``), made in autocommit, so a checkout does not switch a
connection's mode and back.
"""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from flask.ctx import _AppCtxGlobals
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.db import make_engine, make_session_factory


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], pool_size=app.config["DB_POOL_SIZE"])
    app.extensions["db.engine"] = engine
    app.extensions["db.sessions"] = make_session_factory(engine)
    from web.scim.auth import watch_credentials

    watch_credentials(app.extensions["db.sessions"], app.config["RATE_LIMIT_REDIS_URL"])
    autocommit = make_engine(app.config["DATABASE_URL"], pool_size=app.config["DB_POOL_SIZE"],
                             autocommit=True)
    app.extensions["db.autocommit_engine"] = autocommit
    app.extensions["db.autocommit_sessions"] = make_session_factory(autocommit)
    app.teardown_appcontext(lambda _exc: release(g._get_current_object()))


def dispose(app: Flask, *, close: bool = True) -> None:
    """Drop the pooled connections of both engines (``close=False``: in a forked child, which
    must not use or close its parent's)."""
    for name in ("db.engine", "db.autocommit_engine"):
        app.extensions[name].dispose(close=close)


def session() -> Session:
    """The current request's (or task's) session, opened on first use."""
    ctx = g._get_current_object()  # once: a proxy access costs ~1-2 µs
    found = ctx.get("db_session")
    if found is None:
        factory = "db.autocommit_sessions" if _scim_read() else "db.sessions"
        found = ctx.db_session = current_app.extensions[factory]()
    return found


def autocommit_connection() -> Connection:
    """The current request's autocommit connection: each statement commits on its own, so it
    serves reads and writes that are a single statement."""
    ctx = g._get_current_object()
    found = ctx.get("db_autocommit_connection")
    if found is None:
        engine = current_app.extensions["db.autocommit_engine"]
        found = ctx.db_autocommit_connection = engine.connect()
    return found


def release(ctx: _AppCtxGlobals) -> None:
    """Give the request's (or task's) sessions and autocommit connection back to the pool;
    ``ctx`` is ``g``'s object."""
    for name in ("db_session", "db_autocommit_connection"):
        held = ctx.pop(name, None)
        if held is not None:
            held.close()


# The user reads an IdP makes (its lookup by userName, a GET by id) run in autocommit. Group
# reads do not: they stream members through a server-side cursor, which needs a transaction.
AUTOCOMMIT_ENDPOINTS = frozenset({"scim.list_users", "scim.get_user"})


def _scim_read() -> bool:
    if not has_request_context():
        return False
    req = request._get_current_object()  # type: ignore[attr-defined]
    return req.method in ("GET", "HEAD") and req.endpoint in AUTOCOMMIT_ENDPOINTS

