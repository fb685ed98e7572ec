"""``flask --app web ...`` commands for operators and admins; JSON on stdout for scripts."""

from __future__ import annotations

from flask import Flask

from web.cli import (  # noqa: F401 (admin adds `flask org ...`)
    admin,
    db,
    jobs,
    licenses,
    managers,
    org,
    resync,
    scim,
)


def init_app(app: Flask) -> None:
    for group in (db.group, org.group, scim.group, org.demo, resync.resync):
        app.cli.add_command(group)
    for group in (jobs.group, managers.group, licenses.group):
        app.cli.add_command(group)
