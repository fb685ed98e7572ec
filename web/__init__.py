"""The synchronous half: the Flask application factory."""

from __future__ import annotations

from flask import Flask

from web.config import load_settings


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings, database, Celery, blueprints, error handlers, CLI."""
    app = Flask(__name__)
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
