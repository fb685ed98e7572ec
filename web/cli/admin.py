"""``flask org admin|activity|status``: the admin page actions for operators and scripts.

Every action of the admin pages has a command: tokens and the SCIM switch are ``flask scim
token|enable|disable``; re-sync is ``flask resync``; failed jobs, pending managers and seats are
``flask jobs``, ``flask managers``, ``flask org seats``; the rest is here. JSON on stdout.
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import func, or_, select

from models import store
from models.user import User
from web.admin import actions
from web.cli.common import db_session, echo_json, get_org
from web.cli.org import group
from web.scim.users import password_hash_for


@group.command("admin", help="Make EMAIL an admin of the organization and set its password.")
@click.argument("org_id")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--keep-password", is_flag=True, help="Keep the current password (e.g. Okta's).")
@click.option("--revoke", is_flag=True, help="Take the admin role away instead.")
@with_appcontext
def admin(org_id: str, email: str, password_stdin: bool, keep_password: bool, revoke: bool) -> None:
    """The user is found by userName or primary email; a missing one is created (it is then a
    user of the organization like one the IdP provisioned, and the IdP may take it over)."""
    with db_session() as session:
        org = get_org(session, org_id)
        lowered = email.strip().lower()
        user = session.scalar(
            select(User).where(
                User.org_id == org.id,
                or_(
                    func.lower(User.user_name) == lowered, func.lower(User.primary_email) == lowered
                ),
            )
        )
        if revoke:
            if user is None:
                raise click.ClickException(f"no user {email} in this organization")
            user.is_admin = False
            session.commit()
            echo_json({"id": str(user.id), "userName": user.user_name, "admin": False})
            return
        password = None
        if not keep_password:
            if password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            if len(password) < 12:
                raise click.ClickException("the password must have at least 12 characters")
        created = False
        if user is None:
            attrs = {
                "userName": email.strip(),
                "emails": [{"value": email.strip(), "type": "work", "primary": True}],
                "active": True,
            }
            written = store.create_user(session, org.id, attrs).user
            assert isinstance(written, User)  # with a session, the row is a User joined to it
            user = written
            created = True
        if password is not None:
            user.password_hash = password_hash_for(password)
        elif not user.password_hash:
            raise click.ClickException("this user has no password yet: set one")
        user.is_admin = True
        session.commit()
        echo_json(
            {"id": str(user.id), "userName": user.user_name, "admin": True, "created": created}
        )


@group.command("status", help="SCIM settings of the organization (token prefix, last use, worker).")
@click.argument("org_id")
@with_appcontext
def status(org_id: str) -> None:
    with db_session() as session:
        echo_json(actions.scim_status(session, get_org(session, org_id)))


@group.command("activity", help="SCIM requests of the organization, newest first (JSON lines).")
@click.argument("org_id")
@click.option("--method", help="GET, POST, PUT, PATCH or DELETE")
@click.option("--status", "status_", metavar="CODE", help="A code (404) or a class (4xx).")
@click.option("--path", help="Substring of the request path.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=50, show_default=True)
@with_appcontext
def activity(
    org_id: str,
    method: str | None,
    status_: str | None,
    path: str | None,
    page: int,
    page_size: int,
) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        try:
            result = actions.activity(
                session,
                org,
                method=method,
                status=status_,
                path=path,
                page=page,
                page_size=page_size,
            )
        except actions.ActionError as exc:
            raise click.ClickException(str(exc)) from None
        for row in result.rows:
            echo_json(row)
        if result.more:
            click.echo(f"page {result.page}, more than {result.total} requests", err=True)
        else:
            click.echo(f"page {result.page} of {result.pages}, {result.total} requests", err=True)


@group.command("users", help="Pending/invalid managers, seat use, unlicensed users, failed jobs.")
@click.argument("org_id")
@with_appcontext
def users(org_id: str) -> None:
    with db_session() as session:
        echo_json(actions.users_overview(session, get_org(session, org_id)))


@group.command("retry-job", help="Queue a failed follow-up job of the organization again.")
@click.argument("org_id")
@click.argument("job_id", type=int)
@with_appcontext
def retry_job(org_id: str, job_id: int) -> None:
    with db_session() as session:
        try:
            job = actions.retry_job(session, get_org(session, org_id), job_id)
        except actions.ActionError as exc:
            raise click.ClickException(str(exc)) from None
        echo_json({"id": job.id, "state": job.state})
