"""POST /Bulk (RFC 7644 §3.7) on the shared SCIM blueprint.

Each operation is dispatched through the application itself: a fresh application context (so
its own ``g``, database session and transaction, closed at its teardown) and a request context
for the operation's method, path, body and the caller's Authorization header, then Flask's
``full_dispatch_request``. The operation therefore runs the very view function, validation,
error handlers, audit row and follow-up jobs of the single request, and commits or rolls back
on its own: one operation's failure never undoes another. The cost is one token check per
operation (a primary-key lookup), accepted for having one code path.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, g, request

from web.database import session
from web.scim.bulk import Outcome, run_bulk
from web.scim.errors import NotImplementedYet, PayloadTooLarge, UnsupportedMediaType
from web.scim.http import ACCEPTED_MEDIA_TYPES, json_body, scim_response
from web.scim.views import bp

BULK_OPERATION_ENVIRON = "workteam.bulk_operation"


def _dispatch(method: str, path: str, data: Any, if_match: str | None) -> Outcome:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    headers = {
        "Authorization": request.headers.get("Authorization", ""),
        "Content-Type": "application/scim+json",
        "X-Request-Id": g.get("request_id", ""),
    }
    if if_match:
        headers["If-Match"] = if_match
    url = f"{request.script_root}/scim/v2/{g.org.id}{path}"
    body = None if data is None else json.dumps(data)
    with (
        app.app_context(),
        app.test_request_context(
            url, method=method, data=body, headers=headers,
            # Lets per-request hooks (rate limits) tell an operation of a bulk request apart.
            environ_overrides={BULK_OPERATION_ENVIRON: True},
        ),
    ):
        response = app.full_dispatch_request()
        raw = response.get_data()
        parsed = json.loads(raw) if raw else None
        location = response.headers.get("Location")
        version = response.headers.get("ETag")
    if location is None and isinstance(parsed, dict) and response.status_code < 400:
        location = (parsed.get("meta") or {}).get("location")
    if location is None and method == "DELETE" and response.status_code < 400:
        location = f"{current_app.config['PUBLIC_URL']}/scim/v2/{g.org.id}{path}"
    return Outcome(response.status_code, parsed, location, version)


@bp.post("/Bulk")
def bulk() -> Response:
    config = current_app.config
    if not config["SCIM_BULK_SUPPORTED"]:
        raise NotImplementedYet("Bulk operations are not enabled for this service")
    max_payload = config["SCIM_BULK_MAX_PAYLOAD"]
    if (request.mimetype or "").lower() not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType("Content-Type must be application/scim+json or application/json")
    if request.content_length is not None and request.content_length > max_payload:
        raise PayloadTooLarge(f"The bulk request is larger than maxPayloadSize ({max_payload})")
    # The bulk limit, not the single-request limit, applies to this body.
    request.max_content_length = max_payload
    body = json_body()
    if len(request.get_data(cache=True)) > max_payload:  # chunked bodies have no length
        raise PayloadTooLarge(f"The bulk request is larger than maxPayloadSize ({max_payload})")
    # Nothing of this request's own transaction is needed while the operations run.
    session().commit()
    result = run_bulk(body, config["SCIM_BULK_MAX_OPERATIONS"], _dispatch)
    return scim_response(result, 200)
