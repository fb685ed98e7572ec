"""Writing outbox rows. Called inside the transaction that makes the change; the web layer
publishes the returned ids after commit (tasks/outbox.py), and a beat sweep catches the rest."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models.db import pg_array

# session.info key: {job id: kind} of the jobs this session wrote, so that publishing after the
# commit needs no second read of the database (which may be gone by then).
ENQUEUED_KINDS = "workteam.enqueued_kinds"

# Job kinds written by the data layer; tasks/outbox.py maps each to its Celery task.
KIND_MANAGERS = "managers.resolve"  # subject: a user whose reference or id-like values changed
# Coalesced, one pending per organization: resolve every pending reference of the organization.
KIND_MANAGERS_ORG = "managers.resolve_org"
KIND_LICENSE_CHECK = "licenses.check"  # coalesced per organization (the check is org-wide)
KIND_MAIL = "mail.send"  # subject: a mail event key; one job per (event, recipient)
KIND_NOTIFY_DEACTIVATED = "mail.deactivated"  # fans out to the manager or the org admins
# Coalesced, one pending per organization: decide every waiting deactivation notice.
KIND_NOTIFY_DEACTIVATED_ORG = "mail.deactivated_org"


def enqueue(
    session: Session,
    org_id: uuid.UUID,
    kind: str,
    dedup_key: str,
    *,
    subject_id: str | None = None,
    payload: dict | None = None,
) -> int | None:
    """Insert a pending job unless one with ``dedup_key`` exists; return the new id or None."""
    # The prebuilt statement of enqueue_many: building an ORM insert per call cost a third of
    # a millisecond.
    ids = enqueue_many(session, org_id, kind, [(dedup_key, subject_id, payload or {})])
    return ids[0] if ids else None


def _remember(session: Session, ids: list[int | None], kind: str) -> None:
    session.info.setdefault(ENQUEUED_KINDS, {}).update(
        {job_id: kind for job_id in ids if job_id is not None}
    )


_INSERT_MANY = text(
    """
    INSERT INTO jobs (org_id, kind, dedup_key, subject_id, payload, state, attempts,
                      progress_done, progress_total, created, updated)
    SELECT :org_id, :kind, t.key, t.subject, t.payload, 'pending', 0, 0, 0, now(), now()
    FROM unnest(CAST(:keys AS text[]), CAST(:subjects AS text[]), CAST(:payloads AS jsonb[]))
         WITH ORDINALITY AS t(key, subject, payload, n)
    ORDER BY t.n
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
    """
)


def enqueue_many(
    session: Session,
    org_id: uuid.UUID,
    kind: str,
    jobs: list[tuple[str, str | None, dict]],
) -> list[int]:
    """``enqueue`` for many ``(dedup_key, subject_id, payload)`` in one statement (a license
    check that gives out thousands of seats writes thousands of mail jobs); returns the ids
    of the rows written, in order."""
    if not jobs:
        return []
    ids = list(
        session.scalars(
            _INSERT_MANY,
            {
                "org_id": org_id,
                "kind": kind,
                "keys": [key for key, _, _ in jobs],
                "subjects": [subject for _, subject, _ in jobs],
                "payloads": [json.dumps(payload) for _, _, payload in jobs],
            },
        )
    )
    _remember(session, list(ids), kind)
    return ids


# --------------------------------------------------------------------- coalesced jobs
# Some work is organization-wide (resolve every pending manager reference, recount seats): one
# run covers any number of writes. Such a job has the dedup key "<kind>:<org>:next" while it
# waits, so a burst of writes shares one job row and one Celery message instead of one each.
#
# The race to close: a write joins the waiting job, and before the write commits, a worker
# starts the job and misses the write. So a write joins under a shared advisory lock held to
# its commit, and a worker claims the job (renames its key, so later writes make a new job)
# under the exclusive lock in a transaction of its own, committed before the work begins: the
# claim waits for every write that joined, and the work sees them all.
COALESCED_SUFFIX = ":next"

# Each key's shared lock is taken (the aggregate reads every row of `joined`) before any row
# is inserted. Two CTEs (`joined`, `coalesced`: the jobs this statement created, as (id, kind)),
# so that a write can join its jobs in its own statement (models/store.py); ``guard``, an SQL
# condition the jobs are written under (an UPDATE's: only if it matched its row).
def coalesced_ctes(guard: str = "true") -> str:
    return f"""
    joined AS (
        SELECT pg_advisory_xact_lock_shared(k) FROM unnest(CAST(:lock_keys AS bigint[])) AS k
    ),
    coalesced AS (
        INSERT INTO jobs (org_id, kind, dedup_key, payload, state, attempts, progress_done,
                          progress_total, created, updated)
        SELECT :org_id, t.kind, t.key, '{{}}'::jsonb, 'pending', 0, 0, 0, now(), now()
        FROM unnest(CAST(:kinds AS text[]), CAST(:keys AS text[])) AS t(kind, key)
        CROSS JOIN (SELECT count(*) FROM joined) AS locked
        WHERE {guard}
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING id, kind
    )"""  # noqa: S608 (constant fragments only, as everywhere below)


_COALESCED_INSERT = text(f"WITH {coalesced_ctes()} SELECT id, kind FROM coalesced")  # noqa: S608


def coalesced_key(kind: str, org_id: uuid.UUID) -> str:
    return f"{kind}:{org_id}{COALESCED_SUFFIX}"


def _lock_key(dedup_key: str) -> int:
    return int.from_bytes(hashlib.sha256(dedup_key.encode()).digest()[:8], "big", signed=True)


def coalesced_params(org_id: uuid.UUID, kinds: Sequence[str]) -> dict[str, object]:
    """The parameters of ``coalesced_ctes`` for ``kinds`` of the organization."""
    keys = [coalesced_key(kind, org_id) for kind in kinds]
    return {"lock_keys": pg_array(_lock_key(k) for k in keys), "org_id": org_id,
            "kinds": pg_array(kinds), "keys": pg_array(keys)}


def remember(session: Session, written: Iterable[tuple[int, str]]) -> None:
    """Note (job id, kind) pairs a statement of the session wrote, for publishing."""
    session.info.setdefault(ENQUEUED_KINDS, {}).update(written)


def enqueue_coalesced(session: Session, org_id: uuid.UUID, *kinds: str) -> list[int]:
    """Make sure a job of each of ``kinds`` for the organization is waiting and will see this
    write (one statement for all); return the ids of the jobs this call created (the caller
    publishes them); a kind whose job was waiting already gives none."""
    rows = session.execute(_COALESCED_INSERT, coalesced_params(org_id, kinds)).all()
    remember(session, rows)
    return [job_id for job_id, _ in rows]


# A claimed or failed job's key: "<kind>:<org>:<id>" for "<kind>:<org>:next".
_DETACHED_KEY = "left(dedup_key, -length(:suffix)) || ':' || id"
# The claim in one statement, run in autocommit: PostgreSQL waits for the writes that joined,
# detaches the job and commits, with no round trip to the worker while it holds the lock. A
# worker may wait for the CPU at any moment (behind its other threads' GIL, or below the web's
# priority: tasks/priority.py), and a lock held across its round trips was held as long, with
# the organization's writes queued behind it. ``set_config(..., true)`` is the lock_timeout of
# this statement's own transaction.
_CLAIM = text(f"""
    WITH timeout AS MATERIALIZED (SELECT set_config('lock_timeout', '5s', true)),
    locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(:lock_key) FROM timeout)
    UPDATE jobs SET dedup_key = {_DETACHED_KEY}
    WHERE id = :id AND dedup_key = :key AND EXISTS (SELECT FROM locked)
""")  # noqa: S608 (a constant fragment)
_KEY = text("SELECT dedup_key FROM jobs WHERE id = :id")


def claim_coalesced(connection: Connection, job_id: int) -> None:
    """Detach a waiting coalesced job from its key (see above), on an autocommit
    ``connection``. Waits for the writes that joined it; gives up after a few seconds (the
    caller retries) rather than stall writes queued behind this lock. A job already claimed,
    or not coalesced, is left as it is."""
    key = connection.scalar(_KEY, {"id": job_id})
    if key is None or not key.endswith(COALESCED_SUFFIX):
        return
    connection.execute(_CLAIM, {"lock_key": _lock_key(key), "suffix": COALESCED_SUFFIX,
                                "id": job_id, "key": key})


def detach(session: Session, job_id: int) -> None:
    """Give a coalesced job the key "<kind>:<org>:<id>" (no commit): later writes make a new
    job instead of joining it. Used when a worker claims it and when it fails for good."""
    session.execute(
        text(
            f"UPDATE jobs SET dedup_key = {_DETACHED_KEY} "  # noqa: S608 (a constant fragment)
            "WHERE id = :id AND dedup_key LIKE '%' || :suffix"
        ),
        {"id": job_id, "suffix": COALESCED_SUFFIX},
    )
