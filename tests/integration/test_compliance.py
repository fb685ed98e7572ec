"""scim2-tester (python-scim's RFC compliance checker, PyPI) against the live service.

It runs discovery, then creates, reads, queries, replaces, patches and deletes every resource
type it discovers, over real HTTP. Every check must pass except the few listed in
KNOWN_DEVIATIONS, each a deliberate behaviour with its reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from werkzeug.serving import make_server

from models import Organization
from tests.conftest import make_org

# (check title, text in its reason) -> why we behave this way on purpose
KNOWN_DEVIATIONS = {
    ("check_remove_attribute", "is read-only"):
        "removing the read-only Workteam extension is refused with 400 mutability "
        "(RFC 7644 §3.5.2: readOnly attributes cannot be modified)",
    ("check_add_attribute", "returned unexpected value for 'members'"):
        "a Group PATCH answers without members unless `attributes` asks for them, so a large "
        "member list is never sent back unasked (issue 6; Entra expects 204/no members)",
    ("check_replace_attribute", "returned unexpected value for 'members'"):
        "same as above, for replace",
    ("check_add_attribute", "manager"):
        "manager.$ref is added once the worker has resolved the reference (asynchronous by "
        "design: IdPs send users in any order); the PATCH response carries manager.value",
    ("check_replace_attribute", "manager"):
        "same as above, for replace",
}


@pytest.fixture(scope="module")
def live_base(app) -> Iterator[tuple[str, str]]:
    org = make_org(app)
    with app.extensions["db.sessions"]() as session:
        # The checker sends hundreds of requests as fast as it can: no rate limit for its org.
        session.get(Organization, org.id).rate_limit = 0
        session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/scim/v2/{org.id}", org.token
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _deviation(result) -> str | None:
    for (title, text), reason in KNOWN_DEVIATIONS.items():
        if result.title == title and text in (result.reason or ""):
            return reason
    return None


def test_scim2_tester_passes(live_base):
    base, token = live_base
    http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    results = check_server(SyncSCIMClient(http))
    http.close()
    assert len(results) > 100  # discovery, Users and Groups were all exercised
    failures = [
        f"{r.status.name} {r.title}: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED) and _deviation(r) is None
    ]
    assert failures == []
    assert sum(r.status == Status.SUCCESS for r in results) >= 120
