"""The licensed and waiting counts read from the tally of users (migrations 0010, 0013) equal
COUNT(*) of licensed and of unlicensed users after any mix of creates, (de)activations,
deletes, seat changes and checks; and the migrations count the users already there."""

from __future__ import annotations

import random
import uuid

import psycopg
from sqlalchemy import select

from models import Organization, licensing, migrate
from models.user import User
from tests.conftest import ScimClient, insert_org, make_org, scratch_database
from tests.integration.worker_helpers import license_counts, person, set_active


def _tallied_and_counted(app, org_id: uuid.UUID) -> tuple[tuple[int, int], tuple[int, int]]:
    """(licensed, waiting) from the tally, and counted."""
    with app.extensions["db.sessions"]() as session:
        tallied = (licensing.licensed_count(session, org_id),
                   licensing.waiting_count(session, org_id))
    counts = license_counts(app, org_id)
    return tallied, (counts.get("licensed", 0), counts.get("unlicensed", 0))


def _users(app, org_id: uuid.UUID) -> list[User]:
    with app.extensions["db.sessions"]() as session:
        return list(session.scalars(select(User).where(User.org_id == org_id)))


def _check(app, org_id: uuid.UUID, seats: int | None = None) -> licensing.Reconciled:
    with app.extensions["db.sessions"]() as session:
        if seats is not None:
            session.get(Organization, org_id).seats = seats
        result = licensing.reconcile(session, org_id)
        session.commit()
    return result


def test_the_tally_follows_checks_deletes_and_seat_changes(app):
    scim = ScimClient(app.test_client(), make_org(app, seats=5))
    org_id = scim.org.id
    users = [person(scim, f"t{i}")["id"] for i in range(8)]
    assert _check(app, org_id).in_use == 5
    assert _tallied_and_counted(app, org_id) == ((5, 3), (5, 3))

    # Deleting a licensed user frees its seat in the tally at once (the delete trigger).
    licensed = [u.id for u in _users(app, org_id) if u.license_state == "licensed"]
    assert scim.delete(f"/Users/{licensed[0]}").status_code == 204
    users.remove(str(licensed[0]))
    assert _tallied_and_counted(app, org_id) == ((4, 3), (4, 3))
    assert _check(app, org_id).in_use == 5  # the next waiting user gets it
    assert _tallied_and_counted(app, org_id) == ((5, 2), (5, 2))

    # Random steps, the tally compared with a count after each (a seeded, repeatable mix).
    rng = random.Random(10)
    for step in range(60):
        action = rng.choice(["create", "deactivate", "activate", "delete", "seats", "check"])
        if action == "create":
            users.append(person(scim, f"r{step}")["id"])
        elif action in ("deactivate", "activate") and users:
            set_active(scim, rng.choice(users), action == "activate")
        elif action == "delete" and users:
            victim = users.pop(rng.randrange(len(users)))
            assert scim.delete(f"/Users/{victim}").status_code == 204
        elif action == "seats":
            result = _check(app, org_id, seats=rng.randint(0, 12))
            assert result.in_use <= result.seats
        else:
            _check(app, org_id)
        tallied, counted = _tallied_and_counted(app, org_id)
        assert tallied == counted, (step, action)
    result = _check(app, org_id, seats=3)
    assert result.in_use == license_counts(app, org_id).get("licensed", 0) <= 3


def test_the_migrations_count_the_users_there_and_go_back():
    """Its own database: TRUNCATE would take every other test's users."""
    insert = (
        "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version,"
        " created, last_modified, manager_state, license_state) SELECT gen_random_uuid(), %s,"
        " %s || i, '{}'::jsonb, '{}', true, 1, now(), now(), 'none', %s"
        " FROM generate_series(1, %s) i")
    licensed = "SELECT coalesce(sum(licensed), 0) FROM user_tallies WHERE org_id = %s"
    waiting = "SELECT coalesce(sum(waiting), 0) FROM user_tallies WHERE org_id = %s"
    with scratch_database("workteam_licensed") as url:
        migrate.upgrade(url, "0009")
        with psycopg.connect(url) as conn:
            org = insert_org(conn, seats=20)
            for prefix, state, n in (("l", "licensed", 12), ("w", "unlicensed", 5),
                                     ("n", "none", 13)):
                conn.execute(insert, (org, prefix, state, n))
        migrate.upgrade(url)
        with psycopg.connect(url) as conn:
            assert conn.execute(licensed, (org,)).fetchone()[0] == 12
            assert conn.execute(waiting, (org,)).fetchone()[0] == 5
            conn.execute(insert, (org, "more", "licensed", 3))  # the insert trigger counts
            conn.execute(insert, (org, "wait", "unlicensed", 4))
            conn.execute("DELETE FROM users WHERE user_name IN ('l1', 'l2', 'n1', 'w1')")
            assert conn.execute(licensed, (org,)).fetchone()[0] == 13
            assert conn.execute(waiting, (org,)).fetchone()[0] == 8
            assert conn.execute("SELECT sum(users) FROM user_tallies WHERE org_id = %s",
                                (org,)).fetchone()[0] == 30 + 7 - 4
            conn.execute("TRUNCATE users CASCADE")
            assert conn.execute(licensed, (org,)).fetchone()[0] == 0
            assert conn.execute(waiting, (org,)).fetchone()[0] == 0
        migrate.downgrade(url, "0012")  # the licensed tally without the waiting column
        with psycopg.connect(url) as conn:
            conn.execute(insert, (org, "back", "licensed", 2))
            conn.execute(insert, (org, "back-w", "unlicensed", 1))
            assert conn.execute(licensed, (org,)).fetchone()[0] == 2
        migrate.downgrade(url, "0009")
        with psycopg.connect(url) as conn:
            conn.execute(insert, (org, "after", "licensed", 2))
            assert conn.execute("SELECT sum(users) FROM user_tallies WHERE org_id = %s",
                                (org,)).fetchone()[0] == 2 + 3
