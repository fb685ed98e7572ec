"""Filter, sort and projection input never reaches SQL as text: an injection corpus sent in
every query parameter and search body, with every SQL statement the app runs captured and
searched for the payload. Values travel as bind parameters only."""

from __future__ import annotations

import contextlib
import json

import pytest
from sqlalchemy import event

from tests.conftest import ScimClient, make_org
from tests.hardening.helpers import SEARCH_SCHEMA, assert_scim_error

# Classic payloads, plus the SCIM-shaped ones that end a string literal or an attribute path.
CORPUS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "'; DROP TABLE users; --",
    "x'); DELETE FROM users WHERE ('a'='a",
    "1; SELECT pg_sleep(5)",
    "' UNION SELECT token_hash, prefix FROM scim_tokens --",
    "admin'/*",
    "%' AND 1=0 UNION SELECT NULL--",
    "\\'; TRUNCATE organizations CASCADE; --",
    "$$; DROP TABLE users; $$",
    "E'\\x27 OR 1=1",
    "U&'\\0027' OR 1=1",
    "lower(user_name)",
    "users.org_id",
    "attrs->>'title'",
    "1) OR (1=1",
    "%",
    "_",
    "*",
]
MARKERS = ("DROP TABLE", "pg_sleep", "UNION SELECT", "TRUNCATE", "DELETE FROM", "1=1")


@contextlib.contextmanager
def captured_sql(app):
    statements: list[str] = []
    engine = app.extensions["db.engine"]

    def record(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _requests(payload: str):
    quoted = json.dumps(payload)
    filters = [
        f"userName eq {quoted}",
        f"userName co {quoted}",
        f"userName sw {quoted} or displayName ew {quoted}",
        f"emails[value eq {quoted}]",
        f"title eq {quoted}",
        f"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq {quoted}",
        f"{payload} eq \"x\"",
        f"userName {payload} \"x\"",
        payload,
    ]
    for i, text in enumerate(filters):
        yield "GET", "/Users", {"filter": text}
        if i % 3 == 0:  # the same compiler behind each: a sample of the others is enough
            yield "GET", "/Groups", {"filter": text.replace("userName", "displayName")}
            yield "POST", "/Users/.search", {"schemas": [SEARCH_SCHEMA], "filter": text}
            yield "POST", "/.search", {"schemas": [SEARCH_SCHEMA], "filter": text}
    for name in ("sortBy", "sortOrder", "attributes", "excludedAttributes", "startIndex",
                 "count", "cursor"):
        yield "GET", "/Users", {name: payload}
        yield "GET", "/Groups", {name: payload}
    yield "POST", "/Users/.search", {"schemas": [SEARCH_SCHEMA], "sortBy": payload}
    yield "GET", f"/Users/{payload}", None


@pytest.mark.parametrize("payload", CORPUS)
def test_injection_corpus_never_reaches_sql_text(client, app, payload):
    scim = ScimClient(client, make_org(app))
    canary = ScimClient(client, make_org(app))
    mine = scim.create_user("own@example.com", title="Engineer")
    theirs = canary.create_user("canary@example.com", title="Engineer")
    answered = 0
    with captured_sql(app) as statements:
        for method, path, params in _requests(payload):
            if method == "GET":
                response = scim.get(path, query_string=params or {})
            else:
                response = scim.post(path, params)
            if response.status_code >= 400:
                assert_scim_error(response, 400, 404)
            else:
                assert response.status_code == 200
                ids = {r["id"] for r in response.get_json().get("Resources", [])}
                assert theirs["id"] not in ids
                assert ids <= {mine["id"]}
            answered += 1
    assert answered > 30
    # Payloads such as "%" or "users.org_id" are ordinary SQL text; the quoted ones are not.
    quoting = any(c in payload for c in "';\"$\\")
    for statement in statements:
        assert not quoting or payload not in statement, statement
        for marker in MARKERS:
            assert marker not in statement, statement
    # Nothing was dropped or changed.
    assert scim.get(f"/Users/{mine['id']}").get_json()["meta"]["version"] == mine["meta"]["version"]
    assert canary.get(f"/Users/{theirs['id']}").status_code == 200


def test_like_wildcards_are_literal(scim):
    scim.create_user("plain@example.com")
    scim.create_user("per%cent@example.com")
    for op, value, expected in [("co", "%", 1), ("co", "_", 0), ("sw", "%", 0), ("ew", "%", 0)]:
        body = scim.get("/Users", query_string={"filter": f'userName {op} "{value}"'}).get_json()
        assert body["totalResults"] == expected, (op, value, body)
