"""``flask scim ...``: bearer tokens and the SCIM switch of an organization."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from models.tokens import issue_token
from web.cli.common import base_url, db_session, echo_json, get_org


@click.group("scim", cls=AppGroup, help="SCIM provisioning of an organization.")
def group() -> None:
    pass


@group.command("token", help="Generate a bearer token (revokes the current one) and enable SCIM.")
@click.argument("org_id")
@click.option(
    "--overlap-minutes",
    type=click.IntRange(min=0, max=7 * 24 * 60),
    default=0,
    help="Keep the previous token working this long, to update the IdP without downtime.",
)
def token(org_id: str, overlap_minutes: int) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        raw, _ = issue_token(session, org, overlap=dt.timedelta(minutes=overlap_minutes))
        org.scim_enabled = True
        session.commit()
        echo_json({"base_url": base_url(org), "token": raw})


def _switch(org_id: str, enabled: bool) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        org.scim_enabled = enabled
        session.commit()
        echo_json({"id": str(org.id), "scim_enabled": enabled})


@group.command("enable", help="Turn SCIM provisioning on.")
@click.argument("org_id")
def enable(org_id: str) -> None:
    _switch(org_id, True)


@group.command("disable", help="Turn SCIM provisioning off (requests get 403).")
@click.argument("org_id")
def disable(org_id: str) -> None:
    _switch(org_id, False)
