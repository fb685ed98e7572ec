"""The buffered audit writer: rows reach the database within the flush interval, one row per
request, and a normal exit (or an explicit flush) writes what is left."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from models import AuditEvent
from tests.conftest import ScimClient, make_org


def _count(app, org_id):
    with app.extensions["db.sessions"]() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.org_id == org_id))


def test_buffered_rows_arrive_within_the_interval(app_env):
    from web import create_app

    app = create_app({"ENV_OVERRIDES": {**app_env, "WORKTEAM_AUDIT_FLUSH_SECONDS": "0.2"}})
    org = make_org(app)
    scim = ScimClient(app.test_client(), org)
    for i in range(5):
        scim.create_user(f"buffered{i}@example.com")
    scim.get("/Users?count=1")
    deadline = time.monotonic() + 5
    while _count(app, org.id) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(app, org.id) == 6
    scim.get("/Users?count=1")
    assert app.extensions["audit"].flush() in (0, 1)  # the thread may have been first
    assert _count(app, org.id) == 7
    app.extensions["db.engine"].dispose()


def test_rows_keep_every_field_as_sent(app_env):
    """Rows are appended with COPY: characters COPY's text format escapes (tab, newline,
    backslash) and non-ASCII come back as they were, and every column is filled."""
    from web import create_app

    app = create_app({"ENV_OVERRIDES": {**app_env, "WORKTEAM_AUDIT_FLUSH_SECONDS": "0"}})
    org = make_org(app)
    scim = ScimClient(app.test_client(), org)
    odd = "tab%09nl%0Aback%5Cslash-é"
    assert scim.get(f"/Users/{odd}").status_code == 404
    with app.extensions["db.sessions"]() as session:
        row = session.scalars(select(AuditEvent).where(AuditEvent.org_id == org.id)).one()
    assert row.path.endswith("/Users/tab\tnl\nback\\slash-é")
    assert (row.method, row.status) == ("GET", 404)
    assert row.token_prefix and row.request_id and row.duration_ms >= 0
    assert row.created is not None and row.created.tzinfo is not None
    app.extensions["db.engine"].dispose()
