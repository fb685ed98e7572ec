"""Alembic environment: the URL comes from the config (set by ``flask db`` from DATABASE_URL)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

import models
from models.db import sqlalchemy_url

config = context.config
target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    url = sqlalchemy_url(config.get_main_option("sqlalchemy.url") or "")
    connectable = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
