"""The task's database session: one per task, from the app the worker runs in."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session


def session() -> Session:
    return current_app.extensions["db.sessions"]()
