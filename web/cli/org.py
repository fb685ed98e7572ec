"""``flask org ...``: organizations."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Organization
from models.organization import PLANS
from web.cli.common import base_url, db_session, echo_json


def org_json(org: Organization) -> dict:
    return {
        "id": str(org.id),
        "name": org.name,
        "plan": org.plan,
        "seats": org.seats,
        "scim_enabled": org.scim_enabled,
        "base_url": base_url(org),
    }


@click.group("org", cls=AppGroup, help="Organizations.")
def group() -> None:
    pass


@group.command("create", help="Create an organization; prints it as JSON.")
@click.argument("name")
@click.option("--plan", type=click.Choice(PLANS), default="free", show_default=True)
@click.option("--seats", type=click.IntRange(min=0), default=0, show_default=True)
def create(name: str, plan: str, seats: int) -> None:
    with db_session() as session:
        org = Organization(name=name, plan=plan, seats=seats)
        session.add(org)
        session.commit()
        echo_json(org_json(org))


@click.command("demo", help="Create (or reuse) the demo paid organization; print how to use it.")
@click.option("--name", default="Demo Organization", show_default=True)
@click.option("--seats", default=25, show_default=True)
@click.option("--flower-url", default="http://127.0.0.1:5555", show_default=True)
@click.option("--flower-auth", default="", help="user:password of Flower's basic auth")
@with_appcontext
def demo(name: str, seats: int, flower_url: str, flower_auth: str) -> None:
    from models.tokens import issue_token

    with db_session() as session:
        org = session.scalar(select(Organization).where(Organization.name == name).limit(1))
        if org is None:
            org = Organization(name=name, plan="paid", seats=seats)
            session.add(org)
            session.flush()
        raw, _ = issue_token(session, org)
        org.scim_enabled = True
        admin_email, admin_password = _demo_admin(session, org)
        session.commit()
        public = current_app.config["PUBLIC_URL"]
        auth = flower_auth or "see FLOWER_BASIC_AUTH"
        lines = [
            "",
            f"  Organization     {org.name} ({org.plan}, {org.seats} seats)",
            f"  SCIM Base URL    {base_url(org)}",
            f"  Bearer token     {raw}",
            f"  Admin page       {public}/admin/login  ({admin_email} / {admin_password})",
            f"  Flower           {flower_url}  (basic auth {auth})",
            "",
            "  Try: curl -H 'Authorization: Bearer <token>' '<Base URL>/Users'",
            "",
        ]
        click.echo("\n".join(lines))


def _demo_admin(session: Session, org: Organization) -> tuple[str, str]:
    """The demo organization's admin, with a new random password each run (shown once)."""
    import secrets

    from models import store
    from models.user import User
    from web.scim.users import password_hash_for

    email = "admin@demo.example"
    password = secrets.token_urlsafe(12)
    user = session.scalar(select(User).where(User.org_id == org.id, User.user_name == email))
    if user is None:
        attrs = {"userName": email, "displayName": "Demo Admin", "active": True,
                 "emails": [{"value": email, "type": "work", "primary": True}]}
        written = store.create_user(session, org.id, attrs).user
        assert isinstance(written, User)  # with a session, the row is a User joined to it
        user = written
    user.password_hash = password_hash_for(password)
    user.is_admin = True
    return email, password


@group.command("seats", help="Set an organization's seats; a license check follows at once.")
@click.argument("org_id")
@click.argument("seats", type=click.IntRange(min=0))
def seats(org_id: str, seats: int) -> None:
    from models.db import utcnow
    from models.jobs import KIND_LICENSE_CHECK, enqueue
    from tasks.outbox import publish, reset_broker_backoff
    from web.cli.common import get_org

    with db_session() as session:
        org = get_org(session, org_id)
        org.seats = seats
        job_id = enqueue(
            session,
            org.id,
            KIND_LICENSE_CHECK,
            f"{KIND_LICENSE_CHECK}:{org.id}:seats:{utcnow().isoformat()}",
            subject_id=str(org.id),
        )
        session.commit()
        reset_broker_backoff()
        publish([job_id] if job_id else [])
        echo_json(org_json(org))


@group.command("rate-limit", help="Set the organization's SCIM rate limit (requests/s per token).")
@click.argument("org_id")
@click.argument("rate", required=False, type=click.IntRange(min=0))
@click.option("--default", "use_default", is_flag=True, help="Back to WORKTEAM_RATE_LIMIT.")
def rate_limit(org_id: str, rate: int | None, use_default: bool) -> None:
    """0 means no limit. Without RATE or --default, shows the current setting."""
    from web.cli.common import get_org

    with db_session() as session:
        org = get_org(session, org_id)
        if use_default:
            org.rate_limit = None
        elif rate is not None:
            org.rate_limit = rate
        session.commit()
        effective = org.rate_limit if org.rate_limit is not None else current_app.config[
            "RATE_LIMIT"]
        echo_json({"id": str(org.id), "rate_limit": org.rate_limit, "effective": effective})
