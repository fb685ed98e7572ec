"""Helpers shared by the CLI modules."""

from __future__ import annotations

import json
import uuid

import click
from flask import current_app
from sqlalchemy.orm import Session

from models import Organization


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, default=str, sort_keys=True))


def db_session() -> Session:
    return current_app.extensions["db.sessions"]()


def get_org(session: Session, org_id: str) -> Organization:
    try:
        org = session.get(Organization, uuid.UUID(org_id))
    except ValueError:
        org = None
    if org is None:
        raise click.ClickException(f"no organization {org_id}")
    return org


def base_url(org: Organization) -> str:
    return f"{current_app.config['PUBLIC_URL']}/scim/v2/{org.id}"
