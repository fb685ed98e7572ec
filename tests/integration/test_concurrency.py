"""Races between duplicate requests: the database, not luck, decides."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from models import User

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_concurrent_duplicate_posts_make_one_user(app, org):
    """Sixteen identical creates at once: exactly one 201, fifteen 409 uniqueness."""
    barrier = threading.Barrier(16)
    body = json.dumps({"schemas": [CORE], "userName": "race@example.com"})

    def post(_: int):
        client = app.test_client()
        barrier.wait()
        return client.post(f"{org.base}/Users", data=body,
                           headers=org.headers(**{"Content-Type": "application/scim+json"}))

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(post, range(16)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 15
    assert all(r.get_json()["scimType"] == "uniqueness" for r in responses if r.status_code == 409)
    with app.extensions["db.sessions"]() as session:
        count = session.scalar(select(func.count()).select_from(User).where(
            User.org_id == org.id, func.lower(User.user_name) == "race@example.com"))
    assert count == 1


def test_concurrent_patches_lose_no_update(app, org, scim):
    """Each of 12 writers adds its own phone number: optimistic version checks with retry
    mean every one of them is in the final state."""
    user = scim.create_user("writers@example.com")
    barrier = threading.Barrier(12)

    def patch(i: int):
        client = app.test_client()
        body = json.dumps({"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "phoneNumbers", "value": [{"value": f"+1-555-{i:04d}"}]}]})
        barrier.wait()
        return client.patch(f"{org.base}/Users/{user['id']}", data=body,
                            headers=org.headers(**{"Content-Type": "application/scim+json"}))

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(patch, range(12)))
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 12, [r.get_json() for r in responses if r.status_code != 200]
    final = scim.get(f"/Users/{user['id']}").get_json()
    numbers = {p["value"] for p in final.get("phoneNumbers", [])}
    assert len(numbers) == len(ok)
    assert final["meta"]["version"] == f'W/"{1 + len(ok)}"'
