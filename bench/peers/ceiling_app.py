"""The ceiling: the least a SCIM server on this stack must do per request.

Flask under the benchmark's gunicorn settings, a psycopg connection pool per worker, and one
statement per request on PostgreSQL, in autocommit: an indexed SELECT for a lookup, an INSERT
for a create, an UPDATE for PATCH and PUT, a page (plus its count) for a list. It answers the same
workloads as the real servers, with the same status codes and the body fields the load
generator checks, and validates nothing else. What it reaches is what Flask + gunicorn +
PostgreSQL can do on this machine at best.

Environment: BENCH_DATABASE_URL (postgresql://...), BENCH_TOKEN (the bearer token).
Schema: ``schema.sql`` beside this file, loaded by run_ceiling.sh into a fresh database.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import threading
from typing import Any

from flask import Flask, Response, request
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

ORG = 1
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
FILTER_RE = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
TRUE_STRINGS = {"true": True, "false": False}

app = Flask(__name__)
_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
_token = os.environ.get("BENCH_TOKEN", "").encode()


def pool() -> ConnectionPool:
    """One pool per worker process, made after the fork on first use."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                size = int(os.environ.get("BENCH_POOL_SIZE", "4"))
                # Autocommit: each statement commits as it runs, so a request is one round
                # trip (a transaction would add a COMMIT to every request, lookups included).
                _pool = ConnectionPool(
                    os.environ["BENCH_DATABASE_URL"], min_size=size, max_size=size, open=True,
                    kwargs={"autocommit": True},
                )
    return _pool


def scim(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/scim+json")


def error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim(body, status)


@app.before_request
def authenticate() -> Response | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), _token):
        return error(401, "unauthorized")
    return None


def user_doc(uid: Any, data: dict[str, Any], active: bool) -> dict[str, Any]:
    doc = dict(data)
    doc["id"] = str(uid)
    doc["active"] = active
    doc["meta"] = {"resourceType": "User", "location": f"{request.host_url}Users/{uid}"}
    return doc


def as_bool(value: Any) -> bool | None:
    """Entra sends "False" as a string: accept booleans and their string forms."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return TRUE_STRINGS.get(value.lower())
    return None


@app.get("/Users")
def list_users() -> Response:
    flt = request.args.get("filter")
    with pool().connection() as conn:
        if flt is not None:
            match = FILTER_RE.match(flt)
            if match is None:
                return error(400, "only userName eq is supported", "invalidFilter")
            name = match.group(1).replace('\\"', '"')
            rows = conn.execute(
                "SELECT id, data, active FROM users"
                " WHERE org = %s AND lower(user_name) = lower(%s)",
                (ORG, name),
            ).fetchall()
            total = len(rows)
            start = 1
        else:
            start = max(1, int(request.args.get("startIndex", "1")))
            count = max(0, min(int(request.args.get("count", "100")), 1000))
            total = conn.execute("SELECT count(*) FROM users WHERE org = %s", (ORG,)).fetchone()[0]
            rows = conn.execute(
                "SELECT id, data, active FROM users WHERE org = %s ORDER BY id OFFSET %s LIMIT %s",
                (ORG, start - 1, count),
            ).fetchall()
    resources = [user_doc(uid, data, active) for uid, data, active in rows]
    return scim(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


@app.post("/Users")
def create_user() -> Response:
    data = request.get_json(force=True)
    name = data.get("userName")
    if not isinstance(name, str) or not name:
        return error(400, "userName is required", "invalidValue")
    active = as_bool(data.get("active", True))
    try:
        with pool().connection() as conn:
            uid = conn.execute(
                "INSERT INTO users (org, user_name, data, active) VALUES (%s, %s, %s, %s)"
                " RETURNING id",
                (ORG, name, Jsonb(data), active is not False),
            ).fetchone()[0]
    except UniqueViolation:
        return error(409, "userName taken", "uniqueness")
    return scim(user_doc(uid, data, active is not False), 201)


@app.put("/Users/<uuid:uid>")
def replace_user(uid: Any) -> Response:
    data = request.get_json(force=True)
    name = data.get("userName")
    if not isinstance(name, str) or not name:
        return error(400, "userName is required", "invalidValue")
    active = as_bool(data.get("active", True)) is not False
    with pool().connection() as conn:
        row = conn.execute(
            "UPDATE users SET user_name = %s, data = %s, active = %s WHERE org = %s AND id = %s"
            " RETURNING id",
            (name, Jsonb(data), active, ORG, uid),
        ).fetchone()
    if row is None:
        return error(404, "no such user")
    return scim(user_doc(uid, data, active))


@app.patch("/Users/<uuid:uid>")
def patch_user(uid: Any) -> Response:
    body = request.get_json(force=True)
    active = None
    for op in body.get("Operations", []):
        if str(op.get("op", "")).lower() == "replace" and str(op.get("path", "")) == "active":
            active = as_bool(op.get("value"))
    if active is None:
        return error(400, "the ceiling only patches active", "invalidValue")
    with pool().connection() as conn:
        row = conn.execute(
            "UPDATE users SET active = %s WHERE org = %s AND id = %s RETURNING data",
            (active, ORG, uid),
        ).fetchone()
    if row is None:
        return error(404, "no such user")
    return scim(user_doc(uid, row[0], active))


@app.post("/Groups")
def create_group() -> Response:
    data = request.get_json(force=True)
    with pool().connection() as conn:
        gid = conn.execute(
            "INSERT INTO groups (org, display_name) VALUES (%s, %s) RETURNING id",
            (ORG, data.get("displayName", "")),
        ).fetchone()[0]
    return scim(
        {"schemas": [GROUP_SCHEMA], "id": str(gid), "displayName": data.get("displayName")},
        201,
    )


@app.patch("/Groups/<uuid:gid>")
def patch_group(gid: Any) -> Response:
    body = request.get_json(force=True)
    ids: list[str] = []
    for op in body.get("Operations", []):
        if str(op.get("op", "")).lower() == "add" and str(op.get("path", "")) == "members":
            ids.extend(str(m["value"]) for m in op.get("value", []))
    with pool().connection() as conn:
        conn.execute(
            "INSERT INTO members (group_id, user_id) SELECT %s, unnest(%s::uuid[])"
            " ON CONFLICT DO NOTHING",
            (gid, ids),
        )
    return Response(status=204)


@app.get("/Groups/<uuid:gid>")
def get_group(gid: Any) -> Response:
    with pool().connection() as conn:
        group = conn.execute(
            "SELECT display_name FROM groups WHERE org = %s AND id = %s", (ORG, gid)
        ).fetchone()
        if group is None:
            return error(404, "no such group")
        members = conn.execute(
            "SELECT user_id FROM members WHERE group_id = %s", (gid,)
        ).fetchall()
    return scim(
        {
            "schemas": [GROUP_SCHEMA],
            "id": str(gid),
            "displayName": group[0],
            "members": [{"value": str(m[0])} for m in members],
        }
    )
