"""The user guide's configuration steps, in Chromium, against the real app and a real worker."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import make_org
from tests.integration.admin_helpers import PASSWORD, make_admin
from tests.integration.resync_helpers import bulk_users

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def scim_status(base_url: str, token: str) -> int:
    """Status of GET /Users on the live server (http://127.0.0.1 only)."""
    assert base_url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310
        base_url + "/Users?count=1", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/settings")


def test_configure_scim_as_the_guide_says(page, live_server, worker, shot):  # type: ignore[no-untyped-def]
    org = make_org(live_server.app, enabled=False)
    email = make_admin(live_server.app, org.id)
    shot(page.goto("/admin/login") and page, "login")
    sign_in(page, email)
    # "Go to Organization Settings in Workteam and select the Integrations tab."
    page.get_by_role("link", name="Integrations").click()
    shot(page, "integrations")
    # "Press Manage next to SCIM User Provisioning"
    page.get_by_role("link", name="Manage").click()
    page.get_by_role("heading", name="SCIM User Provisioning Settings").wait_for()
    base_url = page.get_by_label("Base URL").input_value()
    assert base_url == f"{live_server.url}/scim/v2/{org.id}"
    # "Press the Generate Bearer Token button"
    page.get_by_role("button", name="Generate Bearer Token").click()
    token = page.get_by_label("Bearer token").input_value()
    assert re.fullmatch(r"wtscim_[\w-]{40,}", token)
    shot(page, "token")
    assert scim_status(base_url, token) == 403  # not enabled yet
    # "select the Enabled button"
    switch = page.get_by_role("switch", name="Enabled")
    assert switch.get_attribute("aria-checked") == "false"
    switch.click()
    page.get_by_role("switch", name="Enabled").and_(page.locator("[aria-checked=true]")).wait_for()
    assert scim_status(base_url, token) == 200
    shot(page, "enabled")
    assert token not in page.content()  # shown once only
    page.get_by_role("switch", name="Enabled").click()
    page.locator("[role=switch][aria-checked=false]").wait_for()
    assert scim_status(base_url, token) == 403
    page.get_by_role("switch", name="Enabled").click()
    page.locator("[role=switch][aria-checked=true]").wait_for()
    assert scim_status(base_url, token) == 200
    # a second token replaces the first at once
    page.get_by_role("button", name="Generate Bearer Token").click()
    second = page.get_by_label("Bearer token").input_value()
    assert scim_status(base_url, token) == 401 and scim_status(base_url, second) == 200
    # the activity of those requests, and the Users tab
    page.get_by_role("link", name="Activity").click()
    page.get_by_role("cell", name="200", exact=True).first.wait_for()
    shot(page, "activity")
    page.get_by_role("link", name="Users").click()
    page.get_by_text("seats used").wait_for()
    shot(page, "users")
    # "prior to pressing the back arrow button at the top of the page"
    page.get_by_role("link", name="Back to Integrations").click()
    page.wait_for_url("**/admin/settings?tab=integrations")
    assert page.get_by_text("Enabled", exact=True).is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/admin/login")


def test_resync_reaches_100_percent(page, live_server, worker, shot):  # type: ignore[no-untyped-def]
    org = make_org(live_server.app, seats=50)
    with live_server.app.extensions["db.sessions"]() as session:
        bulk_users(session, org.id, 3000, prefix="br", manager_every=7, resolved=False)
    email = make_admin(live_server.app, org.id)
    sign_in(page, email)
    page.goto("/admin/settings/integrations/scim/resync")
    shot(page, "resync-form")
    page.get_by_role("button", name="Re-sync").click()
    page.locator("#resync-job").wait_for()
    shot(page, "resync-running")
    # the page polls the JSON endpoint, then reloads with the summary once done
    expect(page.locator("#resync-summary")).to_be_visible(timeout=90_000)
    expect(page.locator("#resync-percent")).to_have_text("100")
    expect(page.locator("#resync-state")).to_have_text("done")
    shot(page, "resync-done")
    assert "users checked" in page.locator("#resync-summary").inner_text()


def test_admin_of_another_org_sees_nothing(page, live_server, shot):  # type: ignore[no-untyped-def]
    app = live_server.app
    first = make_org(app)
    with app.extensions["db.sessions"]() as session:
        bulk_users(session, first.id, 3, prefix="private-person")
    second = make_org(app)
    email = make_admin(app, second.id)
    sign_in(page, email)
    for path in (
        "/admin/settings?tab=integrations",
        "/admin/settings/integrations/scim",
        "/admin/settings/integrations/scim/activity",
        "/admin/settings/integrations/scim/users",
        "/admin/settings/integrations/scim/resync",
    ):
        page.goto(path)
        html = page.content()
        assert str(first.id) not in html and "private-person" not in html, path
    shot(page, "other-org")
    response = page.request.get("/admin/api/resync/1")
    assert response.status in (404,)
    assert json.loads(page.request.get("/admin/api/scim").text())["id"] == str(second.id)
