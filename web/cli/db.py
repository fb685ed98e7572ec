"""``flask db upgrade``: apply the Alembic migrations to DATABASE_URL."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


@click.group("db", cls=AppGroup, help="Database migrations.")
def group() -> None:
    pass


@group.command("upgrade", help="Apply every migration (Alembic heads).")
@click.option("--revision", default="heads", show_default=True)
def upgrade(revision: str) -> None:
    from models import migrate  # Alembic (and Mako) only when migrating: ~10 MB a process

    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo("database is up to date", err=True)


@group.command("revision", help="Autogenerate a migration from the models.")
@click.argument("message")
def revision(message: str) -> None:
    from models import migrate

    migrate.revision(current_app.config["DATABASE_URL"], message)
