"""``flask --app web ...`` commands for operators and admins; JSON on stdout for scripts."""

from __future__ import annotations

from flask import Flask

from web.cli import db, org, scim


def init_app(app: Flask) -> None:
    for group in (db.group, org.group, scim.group, org.demo):
        app.cli.add_command(group)
