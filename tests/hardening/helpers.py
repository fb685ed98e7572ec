"""Helpers of the hardening tests: every SCIM route, and checks on SCIM error answers."""

from __future__ import annotations

import uuid
from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def routes(user_id: str, group_id: str) -> list[tuple[str, str, Any]]:
    """(method, path under the Base URL, body) for every SCIM route of the service."""
    user = {"schemas": [USER_SCHEMA], "userName": f"x-{uuid.uuid4().hex[:8]}@example.com"}
    group = {"schemas": [GROUP_SCHEMA], "displayName": f"g-{uuid.uuid4().hex[:8]}"}
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "displayName", "value": "stolen"}],
    }
    search = {"schemas": [SEARCH_SCHEMA], "filter": 'userName pr'}
    bulk = {
        "schemas": [BULK_SCHEMA],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{user_id}", "data": patch},
            {"method": "DELETE", "path": f"/Groups/{group_id}"},
        ],
    }
    return [
        ("GET", "/ServiceProviderConfig", None),
        ("GET", "/Schemas", None),
        ("GET", f"/Schemas/{USER_SCHEMA}", None),
        ("GET", "/ResourceTypes", None),
        ("GET", "/ResourceTypes/User", None),
        ("GET", "/Users", None),
        ("GET", f"/Users/{user_id}", None),
        ("POST", "/Users", user),
        ("PUT", f"/Users/{user_id}", {**user, "userName": "stolen@example.com"}),
        ("PATCH", f"/Users/{user_id}", patch),
        ("DELETE", f"/Users/{user_id}", None),
        ("POST", "/Users/.search", search),
        ("POST", "/.search", search),
        ("GET", "/Groups", None),
        ("GET", f"/Groups/{group_id}", None),
        ("POST", "/Groups", group),
        ("PUT", f"/Groups/{group_id}", {**group, "displayName": "stolen"}),
        ("PATCH", f"/Groups/{group_id}", patch),
        ("DELETE", f"/Groups/{group_id}", None),
        ("POST", "/Groups/.search", {"schemas": [SEARCH_SCHEMA], "filter": "displayName pr"}),
        ("GET", "/Me", None),
        ("POST", "/Bulk", bulk),
    ]


def assert_scim_error(response: Any, *statuses: int) -> dict:
    """The response is a SCIM error body (RFC 7644 §3.12) with one of ``statuses``."""
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/scim+json", response.mimetype
    body = response.get_json()
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(response.status_code), body
    return body
