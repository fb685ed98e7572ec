"""One SQLAlchemy session per request, closed at teardown; no hidden commits."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from models.db import make_engine, make_session_factory


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], pool_size=app.config["DB_POOL_SIZE"])
    app.extensions["db.engine"] = engine
    app.extensions["db.sessions"] = make_session_factory(engine)
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The current request's (or task's) session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db.sessions"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
