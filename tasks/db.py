"""The task's database session (one per task) and autocommit connections, from the app the worker
runs in."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


def session() -> Session:
    return current_app.extensions["db.sessions"]()


def autocommit() -> Connection:
    """A connection whose every statement commits on its own (close it: ``with``)."""
    return current_app.extensions["db.autocommit_engine"].connect()
