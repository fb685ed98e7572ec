"""1,000 users created concurrently, each with a manager named by externalId, userName or
employeeNumber, in random order, in an organization with fewer seats than users: every
reference resolves, exactly N are licensed (never more, sampled throughout), one welcome mail
per licensed user, one overflow notice."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from models.organization import Organization
from models.user import User
from tests.conftest import ScimClient, make_org
from tests.fixtures_worker import wait_until
from tests.integration.worker_helpers import CORE, ENT, license_counts, make_admin, person

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.usefixtures("worker")]

USERS = 1000
SEATS = 300


def test_thousand_concurrent_users(worker_app, smtp_server) -> None:
    rng = random.Random(4)
    org = make_org(worker_app, seats=SEATS)
    with worker_app.extensions["db.sessions"]() as session:
        # 1,000 creates from 8 threads outrun the default 50 requests/s: no limit for this org.
        session.get(Organization, org.id).rate_limit = 0
        session.commit()
    admin_client = ScimClient(worker_app.test_client(), org)
    admin = person(admin_client, "admin", externalId=f"admin-{uuid.uuid4().hex[:6]}")
    make_admin(worker_app, admin["id"])
    tag = uuid.uuid4().hex[:6]
    keys = [{"externalId": f"x-{tag}-{i}", "userName": f"u-{tag}-{i}@example.com",
             "employeeNumber": f"n-{tag}-{i}"} for i in range(USERS)]
    parent = [None] + [rng.randrange(i) for i in range(1, USERS)]

    def body(i: int) -> dict:
        if parent[i] is None:
            manager = admin["externalId"]
        else:
            manager = keys[parent[i]][rng.choice(["externalId", "userName", "employeeNumber"])]
        k = keys[i]
        return {"schemas": [CORE, ENT], "userName": k["userName"], "externalId": k["externalId"],
                "emails": [{"value": k["userName"], "primary": True}],
                ENT: {"employeeNumber": k["employeeNumber"], "manager": {"value": manager}}}

    bodies = [body(i) for i in range(USERS)]
    order = list(range(USERS))
    rng.shuffle(order)
    local = threading.local()
    over_seats: list[int] = []
    done = threading.Event()

    def sample() -> None:
        with worker_app.extensions["db.sessions"]() as session:
            while not done.is_set():
                n = session.scalar(select(func.count()).where(
                    User.org_id == org.id, User.license_state == "licensed"))
                session.rollback()
                if n > SEATS:
                    over_seats.append(n)
                time.sleep(0.05)

    def create(i: int) -> int:
        if not hasattr(local, "scim"):
            local.scim = ScimClient(worker_app.test_client(), org)
        return local.scim.post("/Users", bodies[i]).status_code

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(create, order))
        created = time.monotonic() - started
        assert statuses == [201] * USERS

        def resolved() -> bool:
            with worker_app.extensions["db.sessions"]() as session:
                return not session.scalar(select(func.count()).where(
                    User.org_id == org.id, User.manager_state != "resolved",
                    User.id != uuid.UUID(admin["id"])))

        wait_until(resolved, timeout=180, interval=0.5)
        expected = {"licensed": SEATS, "unlicensed": USERS + 1 - SEATS}
        wait_until(lambda: license_counts(worker_app, org.id) == expected,
                   timeout=120, interval=0.5)
        addresses = {k["userName"] for k in keys} | {admin["userName"]}
        wait_until(lambda: len([m for m in smtp_server.to_any(addresses)
                                if m.subject.startswith("Welcome")]) >= SEATS,
                   timeout=120, interval=0.5)
        wait_until(lambda: [m for m in smtp_server.to(admin["userName"]) if "seats" in m.subject],
                   timeout=60)
        time.sleep(1)  # anything extra would have arrived by now
    finally:
        done.set()
        sampler.join(timeout=5)
    print(f"\n{USERS} creates in {created:.1f}s; all settled {time.monotonic() - started:.1f}s")

    assert over_seats == []
    assert license_counts(worker_app, org.id) == expected
    with worker_app.extensions["db.sessions"]() as session:
        rows = session.execute(select(User.id, User.external_id, User.manager_id, User.seq,
                                      User.license_state).where(User.org_id == org.id)).all()
    by_ext = {r.external_id: r.id for r in rows}
    manager_of = {r.external_id: r.manager_id for r in rows}
    for i in range(USERS):
        boss = admin["externalId"] if parent[i] is None else keys[parent[i]]["externalId"]
        assert manager_of[keys[i]["externalId"]] == by_ext[boss]
    # Oldest first: the licensed are exactly the first SEATS users by creation.
    oldest = {r.id for r in sorted(rows, key=lambda r: r.seq)[:SEATS]}
    assert {r.id for r in rows if r.license_state == "licensed"} == oldest
    # One mail per event. The one documented exception (tasks/notifications.py): a worker that
    # loses its SMTP answer after the server accepted (a timeout under load) sends again with
    # the same Message-ID, which receivers drop; so events are counted by Message-ID.
    welcome = _by_message_id(m for m in smtp_server.to_any(addresses)
                             if m.subject.startswith("Welcome"))
    recipients = [m.rcpt_tos[0].lower() for m in welcome.values()]
    assert len(recipients) == len(set(recipients)) == SEATS
    overflow = _by_message_id(m for m in smtp_server.to(admin["userName"]) if "seats" in m.subject)
    assert len(overflow) == 1


def _by_message_id(messages) -> dict:  # type: ignore[no-untyped-def]
    return {m.message["Message-ID"]: m for m in messages}
