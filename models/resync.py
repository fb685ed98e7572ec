"""Bulk re-sync on the data layer: IdP exports, their differences with the stored users, the
re-sync job row (one at a time per organization, claimed with a lease, checkpointed).

The export is stored in its own table (``resync_exports``), never in the job row or a Celery
argument: it holds user names. Pure parts (``parse_export``, ``diff_batch``) need no database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    cast,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.db import Base, new_id, rowcount, utcnow
from models.organization import Organization
from models.outbox import Job

KIND = "resync"
LIVE_STATES = ("pending", "running")
# Differences listed in a job's result, per kind; the counts are always complete.
SAMPLE_LIMIT = 200


class ResyncExport(Base):
    """An IdP export uploaded for a re-sync: rows of [userName, externalId, active]."""

    __tablename__ = "resync_exports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str | None] = mapped_column(String(255))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    entries: Mapped[list] = mapped_column(JSONB, default=list)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExportError(ValueError):
    """The uploaded file is not a SCIM ListResponse nor a CSV with userName/externalId/active."""


@dataclass(frozen=True)
class Entry:
    user_name: str
    external_id: str | None
    active: bool


def _as_bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw is None or raw == "":
        return True  # SCIM: a user without "active" is active
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise ExportError(f"{where}: active must be true or false, got {raw!r}")


def parse_export(data: bytes) -> list[Entry]:
    """Parse a SCIM ListResponse (JSON) or a CSV with a header naming userName, externalId and
    active (case-insensitive). Raises ExportError with the line or resource at fault."""
    text = data.decode("utf-8-sig", errors="strict").strip()
    if not text:
        raise ExportError("the file is empty")
    entries = _parse_json(text) if text[0] in "{[" else _parse_csv(text)
    seen: set[str] = set()
    for entry in entries:
        key = entry.user_name.lower()
        if key in seen:
            raise ExportError(f"userName {entry.user_name!r} appears twice")
        seen.add(key)
    return entries


def _parse_json(text: str) -> list[Entry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    resources = doc
    if isinstance(doc, dict):  # attribute names are case-insensitive in SCIM
        resources = {k.lower(): v for k, v in doc.items()}.get("resources", [])
    if not isinstance(resources, list):
        raise ExportError("a SCIM ListResponse needs a 'Resources' list")
    entries = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise ExportError(f"Resources[{index}] is not an object")
        attrs = {k.lower(): v for k, v in resource.items()}
        user_name = attrs.get("username")
        if not isinstance(user_name, str) or not user_name.strip():
            raise ExportError(f"Resources[{index}] has no userName")
        external_id = attrs.get("externalid")
        entries.append(
            Entry(
                user_name.strip(),
                str(external_id) if external_id not in (None, "") else None,
                _as_bool(attrs.get("active"), f"Resources[{index}]"),
            )
        )
    return entries


def _parse_csv(text: str) -> list[Entry]:
    reader = csv.DictReader(io.StringIO(text))
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    if "username" not in header:
        raise ExportError("the CSV header must name userName (and externalId, active)")
    entries = []
    for row in reader:
        line = reader.line_num
        user_name = (row.get(header["username"]) or "").strip()
        if not user_name:
            raise ExportError(f"line {line}: userName is empty")
        external_id = (
            (row.get(header["externalid"]) or "").strip() if "externalid" in header else ""
        )
        active = row.get(header["active"]) if "active" in header else None
        entries.append(Entry(user_name, external_id or None, _as_bool(active, f"line {line}")))
    return entries


def store_export(
    session: Session, org_id: uuid.UUID, entries: Sequence[Entry], filename: str | None
) -> ResyncExport:
    export = ResyncExport(
        org_id=org_id,
        filename=(filename or "")[:255] or None,
        row_count=len(entries),
        entries=[[e.user_name, e.external_id, e.active] for e in entries],
    )
    session.add(export)
    session.flush()
    return export


def prune_exports(session: Session, cutoff: dt.datetime) -> int:
    """Delete the exports uploaded before ``cutoff`` (no commit) but one a live re-sync still
    reads; how many went. They hold the user names of a whole directory; a dry run older
    than the retention can no longer be applied (upload the export again)."""
    live = (
        select(Job.id)
        .where(Job.org_id == ResyncExport.org_id, Job.kind == KIND,
               Job.state.in_(LIVE_STATES),
               Job.payload["export_id"].astext == cast(ResyncExport.id, String))
        .exists()
    )
    result = session.execute(
        delete(ResyncExport).where(ResyncExport.created < cutoff, ~live)
    )
    return rowcount(result)


# --- differences -------------------------------------------------------------------------


@dataclass
class ExportIndex:
    """The export keyed for matching: externalId first (stable at the IdP), then userName."""

    by_external_id: dict[str, Entry]
    by_user_name: dict[str, Entry]

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> ExportIndex:
        by_ext: dict[str, Entry] = {}
        by_name: dict[str, Entry] = {}
        for entry in entries:
            by_name[entry.user_name.lower()] = entry
            if entry.external_id:
                by_ext[entry.external_id] = entry
        return cls(by_ext, by_name)

    def match(self, user_name: str, external_id: str | None) -> Entry | None:
        if external_id and external_id in self.by_external_id:
            return self.by_external_id[external_id]
        return self.by_user_name.get(user_name.lower())


@dataclass
class Diff:
    """Differences between the IdP export and one batch of stored users, applied on
    confirmation. Users in the IdP but not here are found by the job's last phase
    (tasks/resync.py) and reported only: the export has not the attributes to create them,
    and the IdP pushes them on its next cycle."""

    deactivate: list[dict] = field(default_factory=list)  # here and active, not in the IdP
    set_active: list[dict] = field(default_factory=list)  # active differs
    set_external_id: list[dict] = field(default_factory=list)


def diff_batch(
    index: ExportIndex, users: Iterable[tuple[uuid.UUID, str, str | None, bool]], seen: set[str]
) -> Diff:
    """Compare one batch of stored users (id, userName, externalId, active) with the export;
    adds the matched export userNames (lower-cased) to ``seen``."""
    diff = Diff()
    for user_id, user_name, external_id, active in users:
        entry = index.match(user_name, external_id)
        row = {"id": str(user_id), "userName": user_name}
        if entry is None:
            if active:
                diff.deactivate.append(row)
            continue
        seen.add(entry.user_name.lower())
        if entry.active != active:
            diff.set_active.append({**row, "active": entry.active})
        if entry.external_id and entry.external_id != external_id:
            diff.set_external_id.append({**row, "from": external_id, "to": entry.external_id})
    return diff


# --- the job -----------------------------------------------------------------------------


class ResyncBusy(RuntimeError):
    """A re-sync of this organization is already pending or running."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"re-sync job {job_id} is already in progress")
        self.job_id = job_id


def live_job(session: Session, org_id: uuid.UUID) -> Job | None:
    return session.scalar(
        select(Job)
        .where(Job.org_id == org_id, Job.kind == KIND, Job.state.in_(LIVE_STATES))
        .order_by(Job.id.desc())
        .limit(1)
    )


def latest_job(session: Session, org_id: uuid.UUID) -> Job | None:
    return session.scalar(
        select(Job).where(Job.org_id == org_id, Job.kind == KIND).order_by(Job.id.desc()).limit(1)
    )


def get_job(session: Session, org_id: uuid.UUID, job_id: int) -> Job | None:
    """A re-sync job of ``org_id`` (None for another organization's job: no oracle)."""
    return session.scalar(
        select(Job).where(Job.id == job_id, Job.org_id == org_id, Job.kind == KIND)
    )


def create_job(
    session: Session,
    org_id: uuid.UUID,
    *,
    dry_run: bool,
    export_id: uuid.UUID | None = None,
    requested_by: str | None = None,
) -> Job:
    """Write a pending re-sync job; refuse when one is live. The organization row is locked
    first, so two concurrent starts serialize and the second sees the first's job."""
    session.execute(select(Organization.id).where(Organization.id == org_id).with_for_update())
    existing = live_job(session, org_id)
    if existing is not None:
        raise ResyncBusy(existing.id)
    job = Job(
        org_id=org_id,
        kind=KIND,
        dedup_key=f"{KIND}:{org_id}:{uuid.uuid4()}",
        payload={
            "dry_run": dry_run,
            "export_id": str(export_id) if export_id else None,
            # who asked: an admin user id or "cli"; an id, never a name
            "requested_by": requested_by,
        },
        state="pending",
    )
    session.add(job)
    session.flush()
    return job


def claim(session: Session, job_id: int, *, stale_after: dt.timedelta) -> Job | None:
    """Take the job for this run: pending, or running with no checkpoint for ``stale_after``
    (its worker died). Returns None when another live run holds it or it is finished."""
    now = utcnow()
    claimed = session.scalar(
        update(Job)
        .where(
            Job.id == job_id,
            Job.kind == KIND,
            or_(
                Job.state == "pending",
                (Job.state == "running") & (Job.updated < now - stale_after),
            ),
        )
        .values(state="running", attempts=Job.attempts + 1, updated=now)
        .returning(Job.id)
    )
    if claimed is None:
        return None
    return session.get(Job, job_id, populate_existing=True)


def checkpoint(session: Session, job: Job, **values: Any) -> bool:
    """Record progress; returns False when the job was cancelled meanwhile (stop)."""
    state = session.scalar(
        update(Job).where(Job.id == job.id).values(updated=utcnow(), **values).returning(Job.state)
    )
    return state == "running"


def cancel(session: Session, job: Job) -> bool:
    """Cancel a live job; a running task stops at its next checkpoint."""
    done = session.scalar(
        update(Job)
        .where(Job.id == job.id, Job.state.in_(LIVE_STATES))
        .values(state="cancelled", updated=utcnow(), finished_at=utcnow())
        .returning(Job.id)
    )
    return done is not None


def job_json(job: Job) -> dict:
    """What admins, scripts and the page poller see of a re-sync job (ids and counts only)."""
    result = job.result or {}
    total = job.progress_total or 0
    return {
        "id": job.id,
        "state": job.state,
        "dry_run": bool((job.payload or {}).get("dry_run")),
        "export_id": (job.payload or {}).get("export_id"),
        "done": job.progress_done,
        "total": total,
        "percent": 100
        if job.state == "done"
        else (int(job.progress_done * 100 / total) if total else 0),
        "attempts": job.attempts,
        "error": job.error,
        "summary": result.get("summary", {}),
        "differences": result.get("differences"),
        "created": job.created.isoformat() if job.created else None,
        "finished": job.finished_at.isoformat() if job.finished_at else None,
    }
