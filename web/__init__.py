"""The synchronous half: the Flask application factory."""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any

from flask import Flask

from web.config import load_settings


class App(Flask):
    """Flask, with each view's and hook's synchronous form looked up once: Flask asks
    ``inspect.iscoroutinefunction`` of every hook and the view on every request (seven
    times per SCIM request, 3 % of a lookup's instructions), and the answer never changes.
    Only plain functions are remembered: a class-based view hands over a new bound method
    each request, which would only fill the cache."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        found = self._sync.get(func)
        if found is None:
            found = super().ensure_sync(func)
            if type(func) is FunctionType:
                self._sync[func] = found
        return found


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, database, Celery, blueprints, error handlers, CLI."""
    app = App(__name__)
    settings = load_settings(test_config.get("ENV_OVERRIDES") if test_config else None)
    app.config.update(settings)
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k != "ENV_OVERRIDES"})

    from web import cli, database, logs, ops
    from web.admin import init_admin
    from web.celery_ext import celery_init_app
    from web.scim import init_scim

    logs.init_app(app)
    database.init_app(app)
    celery_init_app(app)
    init_scim(app)
    init_admin(app)
    ops.init_app(app)
    cli.init_app(app)
    return app
