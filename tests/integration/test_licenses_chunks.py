"""Seat reconciliation hands out more seats than PostgreSQL takes parameters in one statement
(65,535) without failing: found by the 100,000-user re-sync benchmark."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from models import User
from models.licensing import reconcile
from tests.conftest import make_org


def test_reconcile_licenses_seventy_thousand_users_at_once(app):
    org = make_org(app, seats=70_000)
    rows = [
        {"org_id": org.id, "user_name": f"bulk{i}@example.com", "active": True,
         "attrs": {"userName": f"bulk{i}@example.com"}, "emails_lower": [],
         "manager_state": "none", "license_state": "unlicensed", "version": 1}
        for i in range(70_000)
    ]
    with app.extensions["db.sessions"]() as session:
        session.execute(insert(User), rows)
        session.commit()
        reconcile(session, org.id)
        session.commit()
        licensed = session.scalar(select(func.count()).select_from(User).where(
            User.org_id == org.id, User.license_state == "licensed"))
    assert licensed == 70_000
