"""``flask resync ORG_ID``: the bulk re-sync of an organization, as on the settings page."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from typing import IO

import click
from flask.cli import with_appcontext

from models import resync as r
from web.admin import actions
from web.cli.common import db_session, echo_json, get_org


def _wait(org_id: str, job_id: int, *, show_bar: bool, timeout: float) -> dict:
    """Poll the job row until it ends; a progress bar on stderr."""
    deadline = time.monotonic() + timeout
    with db_session() as session, contextlib.ExitStack() as stack:
        org = get_org(session, org_id)
        job = actions.resync_job(session, org, job_id)
        assert job is not None
        bar = None  # shown once the job knows how many users it walks
        shown = 0
        while True:
            session.refresh(job)
            if show_bar and bar is None and job.progress_total:
                bar = stack.enter_context(click.progressbar(
                    length=job.progress_total,
                    label=f"re-sync {job.id}",
                    file=sys.stderr,
                ))
            if bar is not None and job.progress_done > shown:
                bar.update(job.progress_done - shown)
                shown = job.progress_done
            if job.state not in r.LIVE_STATES:
                break
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"re-sync {job.id} still {job.state} after {timeout:.0f}s; "
                    f"see `flask resync {org_id} --status`"
                )
            time.sleep(0.5)
        return r.job_json(job)


def _summary_lines(job: dict) -> list[str]:
    lines = [f"re-sync {job['id']}: {job['state']}{' (dry run)' if job['dry_run'] else ''}"]
    lines += [
        f"  {key.replace('_', ' ')}: {value}" for key, value in sorted(job["summary"].items())
    ]
    for kind, diff in (job.get("differences") or {}).items():
        lines.append(f"  difference {kind}: {diff['count']}")
        lines += [f"    {row.get('userName')}" for row in diff["sample"][:20]]
    if job["error"]:
        lines.append(f"  error: {job['error']}")
    return lines


@click.command(
    "resync",
    help="Re-sync an organization: re-resolve managers, recompute licenses, "
    "resend failed mail, and reconcile with an IdP export (--from).",
)
@click.argument("org_id")
@click.option("--dry-run", is_flag=True, help="Show the differences; change nothing.")
@click.option(
    "--from",
    "export_file",
    type=click.File("rb"),
    help="IdP export: SCIM ListResponse JSON, or CSV with userName,externalId,active.",
)
@click.option("--yes", is_flag=True, help="Apply the export's differences without asking.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the final job as JSON on stdout.")
@click.option("--status", "show_status", is_flag=True, help="Show the latest re-sync and exit.")
@click.option("--cancel", is_flag=True, help="Cancel the running re-sync and exit.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait.")
@with_appcontext
def resync(
    org_id: str,
    dry_run: bool,
    export_file: IO[bytes] | None,
    yes: bool,
    wait: bool,
    as_json: bool,
    show_status: bool,
    cancel: bool,
    timeout: float,
) -> None:
    with db_session() as session:
        org = get_org(session, org_id)
        if show_status or cancel:
            try:
                job = (
                    actions.cancel_resync(session, org)
                    if cancel
                    else actions.resync_job(session, org)
                )
            except actions.ActionError as exc:
                raise click.ClickException(str(exc)) from None
            if job is None:
                raise click.ClickException("this organization has no re-sync yet")
            echo_json(r.job_json(job))
            return
        data = export_file.read() if export_file else None
        # With an export, the differences are shown first (a dry run), then applied on "yes".
        first_dry = dry_run or data is not None
        try:
            job = actions.start_resync(
                session,
                org,
                dry_run=first_dry,
                export=data,
                filename=getattr(export_file, "name", None),
                requested_by="cli",
            )
        except actions.ActionError as exc:
            raise click.ClickException(str(exc)) from None
        job_id, export_id = job.id, (job.payload or {}).get("export_id")
    if not wait:
        echo_json({"id": job_id, "state": "pending"})
        return
    result = _wait(org_id, job_id, show_bar=not as_json, timeout=timeout)
    if result["state"] != "done" or dry_run or export_id is None:
        _finish(result, as_json)
        return
    changes = sum(
        (result.get("differences") or {}).get(kind, {}).get("count", 0)
        for kind in ("deactivate", "set_active", "set_external_id")
    )
    for line in _summary_lines(result):
        click.echo(line, err=True)
    if changes == 0:
        _finish(result, as_json)
        return
    if not yes and not click.confirm(f"Apply {changes} change(s) from the export?", err=True):
        click.echo("nothing applied", err=True)
        _finish(result, as_json)
        return
    with db_session() as session:
        try:
            job = actions.start_resync(
                session,
                get_org(session, org_id),
                dry_run=False,
                export_id=uuid.UUID(export_id),
                requested_by="cli",
            )
        except actions.ActionError as exc:
            raise click.ClickException(str(exc)) from None
        job_id = job.id
    _finish(_wait(org_id, job_id, show_bar=not as_json, timeout=timeout), as_json)


def _finish(result: dict, as_json: bool) -> None:
    if as_json:
        echo_json(result)
    else:
        for line in _summary_lines(result):
            click.echo(line)
    if result["state"] != "done":
        raise SystemExit(1)
