"""``flask managers ...``: manager references that are not resolved."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from models.managers import unresolved
from web.cli.common import db_session, echo_json, get_org


@click.group("managers", cls=AppGroup, help="Manager references.")
def group() -> None:
    pass


@group.command("pending", help="Users whose manager reference is pending (or invalid).")
@click.argument("org_id")
@click.option("--invalid/--no-invalid", default=True, show_default=True,
              help="include references refused as invalid (self-reference, cycle)")
def pending(org_id: str, invalid: bool) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        states = ("pending", "invalid") if invalid else ("pending",)
        for user in unresolved(session, org.id, states):
            echo_json(
                {
                    "id": str(user.id),
                    "userName": user.user_name,
                    "manager": user.manager_value,
                    "state": user.manager_state,
                    "reason": user.manager_reason,
                }
            )
