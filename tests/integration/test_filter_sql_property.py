"""Property: for any filter, the SQL the compiler produces selects exactly the users that the
reference evaluator (``filter.matches``, the RFC semantics) selects over the same users.

Values are drawn mostly from the users' own data, so filters match something; text is ASCII
(PostgreSQL's and Python's lower() differ on some non-ASCII letters, e.g. the Turkish dotted
capital I, and the product's case-insensitive matching follows PostgreSQL there).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import store
from models.user import User
from tests.conftest import ScimClient, make_org
from web.scim import definitions as d
from web.scim.filter import And, Compare, Not, Or, Present, ValuePath, matches, parse, render
from web.scim.query import compile_filter

ENT = d.ENTERPRISE_USER_SCHEMA_ID
WORDS = ["alpha", "Beta", "gamma", "ALPHA", "be", "a_b", "50%", "x", "Sales", "sales", ""]
PATHS = [
    "userName", "title", "displayName", "nickName", "externalId", "active", "name.givenName",
    "name.familyName", "emails.value", "emails.type", "emails.primary", "phoneNumbers.value",
    "addresses.locality", f"{ENT}:department", f"{ENT}:employeeNumber", "meta.created", "id",
    f"{ENT}:manager.value", "userType",
]


def _user(rng: random.Random, i: int) -> dict:
    def word() -> str:
        return rng.choice(WORDS[:-1]) + rng.choice(["", str(rng.randint(0, 9))])

    user: dict = {"userName": f"{word()}-{i}@{rng.choice(['a.com', 'b.org'])}"}
    for attr in ("title", "displayName", "nickName", "externalId", "userType"):
        if rng.random() < 0.6:
            user[attr] = word()
    if rng.random() < 0.8:
        user["active"] = rng.random() < 0.7
    if rng.random() < 0.7:
        user["name"] = {k: word() for k in ("givenName", "familyName") if rng.random() < 0.8}
    user["emails"] = [
        {"value": f"{word()}{j}@{rng.choice(['a.com', 'b.org'])}",
         "type": rng.choice(["work", "home", "other"]), **({"primary": True} if j == 0 else {})}
        for j in range(rng.randint(0, 3))
    ]
    if rng.random() < 0.5:
        user["phoneNumbers"] = [{"value": word(), "type": "work"}]
    if rng.random() < 0.5:
        user["addresses"] = [{"locality": word(), "type": "work"}]
    if rng.random() < 0.7:
        user[ENT] = {k: word() for k in ("department", "employeeNumber") if rng.random() < 0.7}
        if rng.random() < 0.4:
            user[ENT]["manager"] = {"value": word()}
    return {k: v for k, v in user.items() if v not in ([], {})}


@pytest.fixture(scope="module")
def population(app: Flask):
    org = make_org(app)
    scim = ScimClient(app.test_client(), org)
    rng = random.Random(7643)
    resources = []
    for i in range(30):
        body = {"schemas": [d.USER_SCHEMA_ID, ENT], **_user(rng, i)}
        response = scim.post("/Users", body)
        assert response.status_code == 201, response.get_json()
        resources.append(response.get_json())
    return org, resources


def _values(path: d.AttrPath, resources: list[dict]):
    t = path.definition.type
    if t == "boolean":
        return st.booleans()
    if t == "dateTime":
        times = [datetime.fromisoformat(r["meta"]["created"].replace("Z", "+00:00"))
                 for r in resources]
        return st.sampled_from(times) | st.sampled_from(times).map(
            lambda x: x + timedelta(microseconds=1)) | st.just(datetime(2000, 1, 1, tzinfo=UTC))
    seen = sorted({v for r in resources for v in _flat(path, r) if isinstance(v, str)})
    pieces = st.sampled_from(seen) if seen else st.nothing()
    return pieces | pieces.map(lambda s: s[: len(s) // 2]) | pieces.map(str.upper) | \
        st.sampled_from(WORDS) | st.text(alphabet="abAB_%x@.-0", max_size=4)


def _flat(path: d.AttrPath, resource: dict) -> list:
    from web.scim.filter import _values as values

    return values(path, resource)


def _leaf(resources: list[dict]):
    strategies = []
    for text in PATHS:
        path = d.resolve_path(d.USER_TYPE, text)
        ops = ["eq", "ne"] if path.definition.type == "boolean" else (
            ["eq", "ne", "gt", "ge", "lt", "le"] if path.definition.type == "dateTime"
            else ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
        strategies.append(st.builds(Compare, st.just(path), st.sampled_from(ops),
                                    _values(path, resources)))
        strategies.append(st.just(Present(path)))
        strategies.append(st.builds(Compare, st.just(path), st.sampled_from(["eq", "ne"]),
                                    st.none()))
    emails = d.resolve_path(d.USER_TYPE, "emails")
    inner = st.one_of(
        st.builds(Compare, st.just(emails.with_sub("type")), st.just("eq"),
                  st.sampled_from(["work", "home", "WORK", "other"])),
        st.builds(Compare, st.just(emails.with_sub("value")), st.sampled_from(["eq", "co", "sw"]),
                  _values(emails.with_sub("value"), resources)),
        st.just(Present(emails.with_sub("primary"))),
    )
    strategies.append(st.builds(ValuePath, st.just(emails),
                                st.recursive(inner, lambda k: st.builds(And, k, k) |
                                             st.builds(Or, k, k), max_leaves=3)))
    return st.one_of(strategies)


def _tree(leaf):
    return st.recursive(leaf, lambda k: st.builds(And, k, k) | st.builds(Or, k, k) |
                        st.builds(Not, k), max_leaves=5)


def test_sql_agrees_with_the_reference_evaluator(app, population):
    org, resources = population
    by_id = {r["id"]: r for r in resources}

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_tree(_leaf(resources)))
    def check(node):
        text = render(node)
        reparsed = parse(text, d.USER_TYPE, max_nodes=1000)  # what a client would send
        expected = {uid for uid, r in by_id.items() if matches(reparsed, r)}
        with app.extensions["db.sessions"]() as session:
            page = store.search(session, User, org.id, compile_filter(reparsed, d.USER_TYPE),
                                limit=1000)
            got = {str(u.id) for u in page.rows}
        assert got == expected, text

    check()
