"""Property-based fuzzing of every input the SCIM API takes: filter strings, PATCH documents,
attribute paths, whole bodies and raw bytes. Whatever comes in, the answer is a success or a
SCIM error (never a 500 or a hang), and an error leaves the stored resource as it was."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models import Organization
from tests.conftest import ScimClient, make_org
from tests.hardening.helpers import (
    BULK_SCHEMA,
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    SEARCH_SCHEMA,
    USER_SCHEMA,
    assert_scim_error,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -------------------------------------------------------------------------- strategies

nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "\ud800", "é", "\U0001d518\U0001d52b", "\u202e", "a" * 5000,
                     "null", "' OR 1=1 --", "\\", '"', "]", "[", "urn:", "..", "$ref"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), nasty_text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(nasty_text, children, max_size=5)
    ),
    max_leaves=20,
)
attribute_names = st.sampled_from([
    "userName", "UserName", "displayName", "name.givenName", "name", "emails", "emails.value",
    "emails.type", "emails.primary", "phoneNumbers.value", "addresses.locality", "active",
    "externalId", "id", "meta.lastModified", "meta.created", "meta.version", "title", "password",
    "groups", "groups.value", "members", "members.value", f"{ENTERPRISE}:manager.value",
    f"{ENTERPRISE}:employeeNumber", f"{ENTERPRISE}:manager", "schemas", "nope", "x.y.z", "",
])
paths = st.one_of(
    attribute_names,
    st.builds(lambda a, f: f"{a}[{f}]", attribute_names, st.just('type eq "work"')),
    st.builds(lambda a, f, s: f"{a}[{f}].{s}", attribute_names,
              st.sampled_from(['type eq "work"', "value pr", "primary eq true", "bad"]),
              st.sampled_from(["value", "type", "nope"])),
    nasty_text,
)
values = st.one_of(
    st.builds(json.dumps, nasty_text), st.integers().map(str), st.sampled_from(
        ["true", "false", "null", '"2011-05-13T04:42:34Z"', "1.5e3", "1e999", "-0", "'x'",
         '"\\u0000"', '"\\ud800"', "@", ""]),
)
operators = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "xx"])


@st.composite
def filters(draw, depth: int = 0) -> str:
    kind = draw(st.integers(0, 6 if depth < 3 else 2))
    if kind == 0:
        return f"{draw(attribute_names)} pr"
    if kind <= 2:
        return f"{draw(attribute_names)} {draw(operators)} {draw(values)}"
    if kind == 3:
        return f"not ({draw(filters(depth + 1))})"
    if kind == 4:
        return f"({draw(filters(depth + 1))})"
    if kind == 5:
        join = draw(st.sampled_from(["and", "or", "AND", "xor", ""]))
        return f"{draw(filters(depth + 1))} {join} {draw(filters(depth + 1))}"
    return f"{draw(attribute_names)}[{draw(filters(depth + 1))}]"


patch_operations = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "Replace", "bogus", 1, None])},
        optional={"path": paths, "value": json_values},
    ),
    max_size=6,
)

# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def target(app):
    org = make_org(app)
    with app.extensions["db.sessions"]() as session:  # a flood by design: no rate limit
        session.get(Organization, org.id).rate_limit = 0
        session.commit()
    scim = ScimClient(app.test_client(), org)
    user = scim.create_user(
        displayName="Target", emails=[{"value": "t@example.com", "type": "work"}],
        **{ENTERPRISE: {"employeeNumber": "7"}},
    )
    group = scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "G",
                                  "members": [{"value": user["id"]}]}).get_json()
    return scim, user, group


def _state(scim: ScimClient, user: dict, group: dict) -> tuple:
    """The target user and group as stored, and how many users and groups there are."""
    stored = scim.get(f"/Users/{user['id']}").get_json()
    stored.pop("urn:workteam:params:scim:schemas:extension:workteam:2.0:User", None)  # worker's
    return (
        json.dumps(stored, sort_keys=True),
        scim.get(f"/Groups/{group['id']}").get_data(as_text=True),
        scim.get("/Users?count=0").get_json()["totalResults"],
        scim.get("/Groups?count=0").get_json()["totalResults"],
    )


def _qs(params: dict) -> str:
    """A query string of any text, lone surrogates too (sent as the bytes a client would)."""
    return urllib.parse.urlencode(
        {k: str(v).encode("utf-8", "surrogatepass") for k, v in params.items()}
    )


def _ok_or_scim_error(response, *success: int) -> bool:
    """True on success; asserts a SCIM error body (and no 5xx) otherwise."""
    if response.status_code in success:
        return True
    assert_scim_error(response, 400, 404, 409, 412, 413)
    return False


# --------------------------------------------------------------------------------- tests


@FUZZ
@given(text=st.one_of(filters(), nasty_text))
@example(text="(" * 5000 + 'userName eq "x"' + ")" * 5000)
@example(text=" or ".join(['userName eq "x"'] * 2000))
@example(text='emails[type eq "work" and value co "@"].value eq "x"')
def test_filters(target, text):
    scim, _user, _group = target
    for response in (
        scim.get("/Users", query_string=_qs({"filter": text})),
        scim.get("/Groups", query_string=_qs({"filter": text})),
        scim.post("/.search", {"schemas": [SEARCH_SCHEMA], "filter": text}),
    ):
        _ok_or_scim_error(response, 200)


@FUZZ
@given(attributes=paths, excluded=paths, sort_by=paths,
       order=st.sampled_from(["ascending", "descending", "up", ""]),
       start=st.one_of(st.integers(), nasty_text), count=st.one_of(st.integers(), nasty_text))
def test_attribute_paths_and_paging(target, attributes, excluded, sort_by, order, start, count):
    scim, user, _group = target
    params = {"attributes": attributes, "excludedAttributes": excluded, "sortBy": sort_by,
              "sortOrder": order, "startIndex": start, "count": count}
    _ok_or_scim_error(scim.get("/Users", query_string=_qs(params)), 200)
    _ok_or_scim_error(scim.get("/Groups", query_string=_qs(params)), 200)
    _ok_or_scim_error(scim.get(f"/Users/{user['id']}",
                               query_string=_qs({"attributes": attributes})), 200)
    _ok_or_scim_error(scim.post("/Users/.search", {"schemas": [SEARCH_SCHEMA],
                                                   "attributes": [attributes],
                                                   "sortBy": sort_by, "count": count}), 200)


@FUZZ
@given(operations=patch_operations)
@example(operations=[{"op": "add", "path": "emails", "value": [{"value": "x"}] * 5000}])
@example(operations=[{"op": "replace", "value": {"displayName": "ok", "nope": 1}}])
@example(operations=[{"op": "replace", "path": "displayName", "value": "ok"},
                     {"op": "remove", "path": "userName"}])
def test_patch_documents(target, operations):
    scim, user, group = target
    before = _state(scim, user, group)
    body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
    if not _ok_or_scim_error(scim.patch(f"/Users/{user['id']}", body), 200, 204):
        assert _state(scim, user, group) == before
    before = _state(scim, user, group)
    if not _ok_or_scim_error(scim.patch(f"/Groups/{group['id']}", body), 200, 204):
        assert _state(scim, user, group) == before


@FUZZ
@given(body=st.dictionaries(nasty_text, json_values, max_size=6),
       with_schema=st.booleans(), user_name=st.one_of(nasty_text, json_values))
@example(body={"emails": [{"value": f"{i}@x"} for i in range(20_000)]}, with_schema=True,
         user_name="big@example.com")
@example(body={"name": {"givenName": json.loads("[" * 40 + "1" + "]" * 40)}},
         with_schema=True, user_name="deep@example.com")
@example(body={"active": "true", "emails": "x@example.com", "name": "x"}, with_schema=True,
         user_name="types@example.com")
def test_whole_bodies(target, body, with_schema, user_name):
    scim, user, group = target
    if with_schema:
        body = {**body, "schemas": [USER_SCHEMA], "userName": user_name}
    before = _state(scim, user, group)
    created = _ok_or_scim_error(scim.post("/Users", body), 201)
    replaced = _ok_or_scim_error(scim.put(f"/Users/{user['id']}", body), 200)
    grouped = _ok_or_scim_error(scim.post("/Groups", {**body, "schemas": [GROUP_SCHEMA]}), 201)
    bulk = scim.post("/Bulk", {"schemas": [BULK_SCHEMA], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": body},
        {"method": "PATCH", "path": f"/Users/{user['id']}", "data": body}]})
    if _ok_or_scim_error(bulk, 200):
        for op in bulk.get_json()["Operations"]:
            assert int(op["status"]) < 500, op
            if int(op["status"]) >= 400:
                assert op["response"]["schemas"] == [
                    "urn:ietf:params:scim:api:messages:2.0:Error"], op
    if not (created or replaced or grouped) and bulk.status_code != 200:
        assert _state(scim, user, group) == before


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), nasty_text.map(
    lambda t: t.encode("utf-8", "surrogatepass"))),
       content_type=st.sampled_from([
           "application/scim+json", "application/json", "text/plain", "application/xml",
           "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
           "application/scim+json; charset=latin-1", "application/json; charset=utf-16"]))
@example(raw=b'{"schemas":["' + USER_SCHEMA.encode() + b'"],"userName":"a","userName":"b"}',
         content_type="application/scim+json")
@example(raw=b"[" * 100_000 + b"]" * 100_000, content_type="application/scim+json")
@example(raw=b'{"schemas":["' + USER_SCHEMA.encode() + b'"],"userName":"a\\u0000"}',
         content_type="application/scim+json")
def test_raw_bodies(target, raw, content_type):
    scim, user, group = target
    before = _state(scim, user, group)
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in [("POST", "/Users"), ("PUT", f"/Users/{user['id']}"),
                         ("PATCH", f"/Users/{user['id']}"), ("POST", "/Groups"),
                         ("POST", "/Bulk"), ("POST", "/.search")]:
        response = scim.request(method, path, data=raw, headers=headers)
        assert response.status_code < 500, (method, path, response.get_data()[:200])
        if response.status_code >= 400:
            assert_scim_error(response, 400, 404, 409, 413, 415)
    after = _state(scim, user, group)
    if after != before:  # only a well-formed create, PUT or PATCH may have changed anything
        assert after[2] >= before[2] and after[3] >= before[3]


def test_ids_and_unknown_routes(target):
    scim, _user, _group = target
    for path in ["/Users/" + "x" * 10_000, "/Users/%00", "/Users/..%2f..%2fetc",
                 f"/Users/{uuid.uuid4()}/extra", "/Groups/\u202e", "/Users/' OR 1=1 --"]:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            response = scim.request(method, path, {"schemas": [PATCH_SCHEMA], "Operations": []})
            assert_scim_error(response, 400, 404, 405)


def test_sort_by_id(target):
    """Found by test_attribute_paths_and_paging: sortBy=id was a 500 (COLLATE on a uuid)."""
    scim, _user, _group = target
    scim.create_user()
    for path in ("/Users", "/Groups"):
        for order in ("ascending", "descending"):
            body = scim.get(path, query_string={"sortBy": "id", "sortOrder": order}).get_json()
            ids = [r["id"] for r in body["Resources"]]
            assert ids == sorted(ids, reverse=order == "descending"), body
