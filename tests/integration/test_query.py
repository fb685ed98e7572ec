"""RFC 7644 §3.4.2 queries: filters in SQL, sorting, projection, index and RFC 9865 cursor
pagination, ETags; and discovery."""

from __future__ import annotations

import time

import pytest

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def people(scim):
    """Five users with varied attributes, in creation order."""
    specs = [
        ("alice@example.com", "Alice", "Zeta", "Engineering", "Sales_Lead", True),
        ("bob@example.com", "Bob", "Young", "Sales", "50% off", True),
        ("carol@example.org", "Carol", "Xu", "engineering", None, False),
        ("dave@example.org", "Dave", "Wu", None, "Manager", True),
        ("erin@example.net", "Erin", "Vance", "Support", "Salesperson", True),
    ]
    out = []
    for user_name, given, family, dept, title, active in specs:
        attrs = {"name": {"givenName": given, "familyName": family}, "active": active,
                 "emails": [{"value": user_name, "type": "work", "primary": True}]}
        if dept:
            attrs[ENTERPRISE] = {"department": dept}
        if title:
            attrs["title"] = title
        out.append(scim.create_user(user_name, **attrs))
    return out


def _ids(scim, **query):
    response = scim.get("/Users", query_string=query)
    assert response.status_code == 200, response.get_json()
    return [r["userName"].split("@")[0] for r in response.get_json()["Resources"]]


@pytest.mark.parametrize(
    "filter_, expected",
    [
        ('userName sw "a"', ["alice"]),
        ('userName ew ".org"', ["carol", "dave"]),
        ('userName co "@EXAMPLE.c"', ["alice", "bob"]),
        ('title co "_"', ["alice"]),  # '_' is a literal, not a LIKE wildcard
        ('title co "%"', ["bob"]),
        ('title sw "Sales"', ["alice", "erin"]),
        ("title pr", ["alice", "bob", "dave", "erin"]),
        ("not (title pr)", ["carol"]),
        ("active eq false", ["carol"]),
        ('active eq "false"', ["carol"]),
        (f'{ENTERPRISE}:department eq "engineering"', ["alice", "carol"]),
        ('department eq "Engineering" and active eq true', ["alice"]),
        ('name.familyName gt "X" or userName eq "erin@example.net"',
         ["alice", "bob", "carol", "erin"]),
        ('not (userName ew ".com") and not (userName ew ".org")', ["erin"]),
        ('emails[type eq "work" and value co "example.org"]', ["carol", "dave"]),
        ('name.givenName ge "C" and name.givenName lt "E"', ["carol", "dave"]),
        ('title ne "Manager"', ["alice", "bob", "erin"]),
        ("meta.created gt \"2000-01-01T00:00:00Z\" and userName sw \"d\"", ["dave"]),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
        ("(userName eq \"alice@example.com\") or (userName eq \"bob@example.com\")",
         ["alice", "bob"]),
    ],
)
def test_filters_run_in_sql(scim, people, filter_, expected):
    assert _ids(scim, filter=filter_) == expected


@pytest.mark.parametrize(
    "filter_",
    ['userName eq "Mixed.Case@Example.com"', 'userName eq "MIXED.CASE@EXAMPLE.COM"',
     'USERNAME EQ "mixed.case@example.com"', '  userName   eq "mixed.case@example.com"  ',
     'userName eq "quo\\"te\\\\back@example.com"', 'userName eq "zo\\u00eb@example.com"',
     'userName eq "zoë@example.com"', 'userName eq "ZOË@EXAMPLE.COM"',
     'userName eq "nobody@example.com"', 'userName eq ""'],
)
def test_the_user_name_lookup_fast_path_answers_as_the_general_path(app, scim, filter_):
    """A `userName eq` lookup as Entra sends it (the filter alone) or as Okta does (with
    `startIndex=1&count=100`) takes a prebuilt statement (web/scim/listing.py); with any other
    parameter it goes through the general parser and compiler. Same answers."""
    from web.scim.listing import user_name_lookup

    okta = {"filter": filter_, "startIndex": "1", "count": "100"}
    general_only = {"filter": filter_, "sortBy": "userName"}
    with app.app_context():
        assert user_name_lookup({"filter": filter_}) is not None
        assert user_name_lookup(okta) is not None
        assert user_name_lookup(general_only) is None
    for name in ("Mixed.Case@Example.com", 'quo"te\\back@example.com', "zoë@example.com"):
        scim.create_user(name)
    fast = scim.get("/Users", query_string={"filter": filter_})
    okta_fast = scim.get("/Users", query_string=okta)
    general = scim.get("/Users", query_string=general_only)
    assert fast.status_code == okta_fast.status_code == general.status_code == 200
    assert fast.get_json() == okta_fast.get_json() == general.get_json()


@pytest.mark.parametrize(
    "extra",
    [{"startIndex": "2"}, {"startIndex": "0"}, {"count": "0"}, {"count": "-1"}, {"count": "x"},
     {"attributes": "userName"}, {"excludedAttributes": "groups"}, {"sortBy": "userName"},
     {"cursor": ""}],
)
def test_only_a_first_page_lookup_takes_the_fast_path(app, extra):
    """Any page but the first, an empty page, a projection, a sort or a cursor has an answer of
    its own shape: the general path gives it."""
    from web.scim.listing import user_name_lookup

    with app.app_context():
        assert user_name_lookup({"filter": 'userName eq "a@example.com"', **extra}) is None


def test_a_lookup_with_a_bad_escape_is_still_invalid_filter(scim):
    response = scim.get("/Users", query_string={"filter": 'userName eq "a\\qb"'})
    assert response.status_code == 400
    assert response.get_json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    "filter_",
    ['nosuch eq "x"', 'password eq "x"', "userName eq", 'userName zz "x"', "(userName pr",
     'userName eq "x" garbage', 'name eq "x"', "active gt true", "urn:nope:thing eq 1",
     'meta.created gt "not a date"', " or ".join(['userName eq "x"'] * 120)],
)
def test_invalid_filters_are_invalid_filter(scim, filter_):
    response = scim.get("/Users", query_string={"filter": filter_})
    assert response.status_code == 400
    assert response.get_json()["scimType"] == "invalidFilter", response.get_json()


def test_filter_longer_than_the_limit(scim, app):
    text = 'userName eq "' + "x" * app.config["SCIM_MAX_FILTER_LENGTH"] + '"'
    response = scim.get("/Users", query_string={"filter": text})
    assert response.status_code == 400 and response.get_json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    "sort_by, order, expected",
    [
        ("userName", "ascending", ["alice", "bob", "carol", "dave", "erin"]),
        ("name.familyName", "ascending", ["erin", "dave", "carol", "bob", "alice"]),
        ("name.givenName", "descending", ["erin", "dave", "carol", "bob", "alice"]),
        ("emails", "descending", ["erin", "dave", "carol", "bob", "alice"]),
        # absent values sort last
        ("title", "ascending", ["bob", "dave", "alice", "erin", "carol"]),
        (f"{ENTERPRISE}:department", "ascending", ["alice", "carol", "bob", "erin", "dave"]),
    ],
)
def test_sorting(scim, people, sort_by, order, expected):
    assert _ids(scim, sortBy=sort_by, sortOrder=order) == expected


def test_sort_errors(scim):
    assert scim.get("/Users?sortBy=nosuch").get_json()["scimType"] == "invalidValue"
    assert scim.get("/Users?sortBy=userName&sortOrder=up").status_code == 400


def test_projection_on_reads_and_writes(scim, people):
    page = scim.get("/Users", query_string={"attributes": "userName,name.givenName"}).get_json()
    first = page["Resources"][0]
    assert set(first) == {"schemas", "id", "userName", "name"}
    assert first["name"] == {"givenName": "Alice"}
    page = scim.get("/Users", query_string={"excludedAttributes": "emails,meta,name"}).get_json()
    assert not {"emails", "meta", "name"} & set(page["Resources"][0])
    assert "id" in page["Resources"][0]  # returned "always" cannot be excluded
    uid = people[0]["id"]
    got = scim.get(f"/Users/{uid}?attributes={ENTERPRISE}:department").get_json()
    assert got[ENTERPRISE] == {"department": "Engineering"} and "userName" not in got
    patched = scim.patch(f"/Users/{uid}?attributes=title", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "title", "value": "CTO"}]}).get_json()
    assert set(patched) == {"schemas", "id", "title"}
    created = scim.post("/Users?excludedAttributes=meta", {"schemas": [CORE],
                                                            "userName": "proj@x.y"}).get_json()
    assert "meta" not in created
    assert scim.get("/Users?attributes=nosuch").status_code == 400


def test_count_zero_and_search_request(scim, people):
    body = scim.get("/Users?count=0").get_json()
    assert body["totalResults"] == 5 and body["Resources"] == [] and body["itemsPerPage"] == 0
    search = {"schemas": [SEARCH], "filter": 'userName ew ".org"', "sortBy": "userName",
              "sortOrder": "descending", "attributes": ["userName"], "startIndex": 1,
              "count": 10}
    for path in ("/Users/.search", "/.search"):
        response = scim.post(path, search)
        assert response.status_code == 200, response.get_json()
        assert [r["userName"] for r in response.get_json()["Resources"]] == [
            "dave@example.org", "carol@example.org"]
    bad = scim.post("/Users/.search", {"filter": "userName pr"})
    assert bad.status_code == 400


def test_cursor_pagination_forward_and_back(scim, people):
    first = scim.get("/Users?cursor=&count=2").get_json()
    assert "startIndex" not in first and first["totalResults"] == 5
    assert [r["userName"][0] for r in first["Resources"]] == ["a", "b"]
    assert "previousCursor" not in first
    second = scim.get("/Users", query_string={"cursor": first["nextCursor"], "count": 2}).get_json()
    assert [r["userName"][0] for r in second["Resources"]] == ["c", "d"]
    third = scim.get("/Users", query_string={"cursor": second["nextCursor"], "count": 2}).get_json()
    assert [r["userName"][0] for r in third["Resources"]] == ["e"]
    assert "nextCursor" not in third
    back = scim.get("/Users", query_string={"cursor": third["previousCursor"],
                                            "count": 2}).get_json()
    assert [r["userName"][0] for r in back["Resources"]] == ["c", "d"]
    back = scim.get("/Users", query_string={"cursor": back["previousCursor"],
                                            "count": 2}).get_json()
    assert [r["userName"][0] for r in back["Resources"]] == ["a", "b"]
    assert "previousCursor" not in back


def test_cursor_pagination_with_sort_and_filter(scim, people):
    query = {"filter": "active eq true", "sortBy": "name.familyName", "count": 3}
    first = scim.get("/Users", query_string={**query, "cursor": ""}).get_json()
    second = scim.get("/Users", query_string={**query, "cursor": first["nextCursor"]}).get_json()
    names = [r["name"]["familyName"] for r in first["Resources"] + second["Resources"]]
    assert names == ["Vance", "Wu", "Young", "Zeta"]
    # A cursor only works for the query it came from.
    other = scim.get("/Users", query_string={"cursor": first["nextCursor"], "count": 3})
    assert other.status_code == 400 and other.get_json()["scimType"] == "invalidCursor"


def test_cursor_errors(scim, app, people):
    bad = scim.get("/Users?cursor=forged-cursor-value")
    assert bad.status_code == 400 and bad.get_json()["scimType"] == "invalidCursor"
    too_many = scim.get(f"/Users?cursor=&count={app.config['SCIM_MAX_PAGE_SIZE'] + 1}")
    assert too_many.status_code == 400 and too_many.get_json()["scimType"] == "invalidCount"
    cursor = scim.get("/Users?cursor=&count=1").get_json()["nextCursor"]
    old = app.config["SCIM_CURSOR_TIMEOUT"]
    app.config["SCIM_CURSOR_TIMEOUT"] = 0
    try:
        time.sleep(1.1)
        expired = scim.get("/Users", query_string={"cursor": cursor, "count": 1})
    finally:
        app.config["SCIM_CURSOR_TIMEOUT"] = old
    assert expired.status_code == 400 and expired.get_json()["scimType"] == "expiredCursor"


def test_etags(scim):
    user = scim.create_user("etag@example.com")
    uid, version = user["id"], user["meta"]["version"]
    assert version.startswith('W/"')
    not_modified = scim.get(f"/Users/{uid}", headers={"If-None-Match": version})
    assert not_modified.status_code == 304 and not_modified.headers["ETag"] == version
    stale = {"If-Match": 'W/"999"'}
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    for response in (scim.patch(f"/Users/{uid}", body, headers=stale),
                     scim.put(f"/Users/{uid}", {"schemas": [CORE], "userName": "etag@example.com"},
                              headers=stale),
                     scim.delete(f"/Users/{uid}", headers=stale)):
        assert response.status_code == 412
        assert response.get_json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    ok = scim.patch(f"/Users/{uid}", body, headers={"If-Match": version})
    assert ok.status_code == 200 and ok.headers["ETag"] != version
    assert scim.get(f"/Users/{uid}", headers={"If-None-Match": version}).status_code == 200


def test_noop_put_and_patch_keep_version(scim):
    user = scim.create_user("noop@example.com", title="Same", name={"givenName": "N"})
    uid = user["id"]
    same_put = {"schemas": [CORE], "userName": "noop@example.com", "title": "Same",
                "name": {"givenName": "N"}, "id": uid, "meta": {"resourceType": "User"}}
    put = scim.put(f"/Users/{uid}", same_put).get_json()
    patch = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "title", "value": "Same"}]}).get_json()
    for got in (put, patch):
        assert got["meta"]["version"] == user["meta"]["version"]
        assert got["meta"]["lastModified"] == user["meta"]["lastModified"]


def test_patch_errors_name_the_operation(scim):
    uid = scim.create_user("perr@example.com")["id"]
    cases = [
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "nosuch", "value": "x"}, "invalidPath"),
        ({"op": "remove", "path": 'emails[type eq "home"]'}, "noTarget"),
        ({"op": "replace", "path": "active", "value": "perhaps"}, "invalidValue"),
        ({"op": "remove", "path": "userName"}, "invalidValue"),
        ({"op": "explode", "path": "title", "value": "x"}, None),
    ]
    for op, scim_type in cases:
        response = scim.patch(f"/Users/{uid}", {"schemas": [PATCH], "Operations": [op]})
        assert response.status_code == 400, op
        body = response.get_json()
        if scim_type:
            assert body["scimType"] == scim_type, (op, body)
        assert "Operations[0]" in body["detail"], body
    assert scim.get(f"/Users/{uid}").get_json()["meta"]["version"] == 'W/"1"'


def test_discovery_needs_the_token_by_default(client, org):
    for path in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        assert client.get(org.base + path).status_code == 401


def test_discovery_documents(scim, app):
    spc = scim.get("/ServiceProviderConfig").get_json()
    assert spc["patch"]["supported"] and spc["sort"]["supported"] and spc["etag"]["supported"]
    assert spc["filter"] == {"supported": True, "maxResults": app.config["SCIM_MAX_PAGE_SIZE"]}
    assert spc["pagination"]["cursor"] and spc["pagination"]["index"]
    assert spc["pagination"]["maxPageSize"] == app.config["SCIM_MAX_PAGE_SIZE"]
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    schemas = scim.get("/Schemas").get_json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {CORE, ENTERPRISE, "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"} <= ids
    user_schema = scim.get(f"/Schemas/{CORE}").get_json()
    attrs = {a["name"]: a for a in user_schema["attributes"]}
    assert attrs["userName"]["caseExact"] is False and attrs["userName"]["uniqueness"] == "server"
    assert attrs["password"]["mutability"] == "writeOnly"
    assert attrs["password"]["returned"] == "never"
    types = scim.get("/ResourceTypes").get_json()
    user_type = next(t for t in types["Resources"] if t["name"] == "User")
    assert user_type["endpoint"] == "/Users" and user_type["schema"] == CORE
    assert scim.get("/ResourceTypes/User").get_json()["id"] == "User"
    assert scim.get("/Schemas/urn:nope").status_code == 404


def test_discovery_public_when_configured(app_env):
    from web import create_app

    public = create_app({"ENV_OVERRIDES": {**app_env, "WORKTEAM_DISCOVERY_PUBLIC": "true"}})
    client = public.test_client()
    import uuid

    assert client.get(f"/scim/v2/{uuid.uuid4()}/Schemas").status_code == 200
    assert client.get(f"/scim/v2/{uuid.uuid4()}/Users").status_code == 401
    public.extensions["db.engine"].dispose()


def test_root_search_spans_users_and_groups(scim):
    user = scim.create_user("rooted@example.com", displayName="Team Root")
    group = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                  "displayName": "Team Root"}).get_json()
    body = {"schemas": [SEARCH], "filter": 'displayName eq "team root"',
            "excludedAttributes": ["members", "emails"]}
    found = scim.post("/.search", body).get_json()
    assert found["totalResults"] == 2
    assert [r["id"] for r in found["Resources"]] == [user["id"], group["id"]]
    assert "members" not in found["Resources"][1]
    second = scim.post("/.search", {**body, "startIndex": 2, "count": 1}).get_json()
    assert [r["id"] for r in second["Resources"]] == [group["id"]]
    only_users = scim.post("/.search", {"schemas": [SEARCH],
                                        "filter": 'userName eq "rooted@example.com"'}).get_json()
    assert [r["id"] for r in only_users["Resources"]] == [user["id"]]
    nobody = scim.post("/.search", {"schemas": [SEARCH], "filter": 'nosuch eq "x"'})
    assert nobody.status_code == 400 and nobody.get_json()["scimType"] == "invalidFilter"


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("query", "names", "total"),
    [
        ({"startIndex": "2", "count": "2"}, ["bob", "carol"], 5),  # counted: rows follow
        ({"startIndex": "4", "count": "2"}, ["dave", "erin"], 5),  # the end: not counted
        ({"startIndex": "5", "count": "10"}, ["erin"], 5),
        ({"startIndex": "9", "count": "2"}, [], 5),  # past the end: counted
        ({"startIndex": "2", "count": "2", "sortBy": "name.familyName"}, ["dave", "carol"], 5),
        ({"startIndex": "2", "count": "9", "filter": 'userName co "example.org"'}, ["dave"], 2),
    ],
)
def test_index_pages_and_their_totals(scim, query, names, total) -> None:
    """Pages after the first read their keys first (a deferred join); the total is counted
    only when the page does not reach the end."""
    body = scim.get("/Users", query_string=query).get_json()
    assert [r["userName"].split("@")[0] for r in body["Resources"]] == names
    assert (body["totalResults"], body["itemsPerPage"]) == (total, len(names))


@pytest.mark.parametrize("created", ["2026-03-29 01:30:00+02", "2026-03-29 01:30:00.000250+02"])
def test_pages_and_lookups_render_a_user_as_a_get_by_id_does(app, scim, created):
    """Pages and lookups read the id and timestamps already written by PostgreSQL
    (listing._iso_utc); GET by id formats ORM values in Python. The same text either way,
    whole seconds included (isoformat drops a zero fraction)."""
    import psycopg

    from tests.conftest import DATABASE_URL

    boss = scim.create_user("iso-boss@example.com")
    user = scim.create_user("iso@example.com")
    with psycopg.connect(DATABASE_URL) as conn:
        conn.execute("UPDATE users SET created = %s, manager_id = %s WHERE id = %s",
                     (created, boss["id"], user["id"]))
    by_id = scim.get(f"/Users/{user['id']}").get_json()
    assert by_id["meta"]["created"] in ("2026-03-28T23:30:00Z", "2026-03-28T23:30:00.000250Z")
    lookup = scim.get("/Users", query_string={"filter": 'userName eq "iso@example.com"'})
    (page_user,) = [u for u in scim.get("/Users?startIndex=1&count=10").get_json()["Resources"]
                    if u["id"] == user["id"]]
    assert lookup.get_json()["Resources"] == [by_id] and page_user == by_id
