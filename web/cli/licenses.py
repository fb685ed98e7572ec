"""``flask licenses ...``: who holds a seat."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from models.licensing import states
from models.user import LICENSE_STATES
from web.cli.common import db_session, echo_json, get_org


@click.group("licenses", cls=AppGroup, help="Seat licenses of paid organizations.")
def group() -> None:
    pass


@group.command("list", help="Users and their license state, oldest first.")
@click.argument("org_id")
@click.option("--state", type=click.Choice(LICENSE_STATES))
def list_licenses(org_id: str, state: str | None) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        for user in states(session, org.id, state):
            echo_json(
                {
                    "id": str(user.id),
                    "userName": user.user_name,
                    "active": user.active,
                    "state": user.license_state,
                    "licensed_at": user.licensed_at.isoformat() if user.licensed_at else None,
                }
            )
