"""Jinja filters of the admin pages."""

from __future__ import annotations

import datetime as dt

from flask import Flask


def when(value: str | dt.datetime | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS UTC' (or 'never')."""
    if value is None:
        return "never"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["when"] = when
