"""/Bulk (RFC 7644 §3.7): the RFC's examples, forward and circular bulkId references,
failOnErrors, limits (413), and a request mixing successes and failures."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.conftest import ScimClient, make_org

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def bulk(scim, operations, **extra):
    return scim.post("/Bulk", {"schemas": [BULK], "Operations": operations, **extra})


def test_service_provider_config_advertises_bulk(scim, app):
    spc = scim.get("/ServiceProviderConfig").get_json()
    assert spc["bulk"] == {
        "supported": True,
        "maxOperations": app.config["SCIM_BULK_MAX_OPERATIONS"],
        "maxPayloadSize": app.config["SCIM_BULK_MAX_PAYLOAD"],
    }


def test_rfc_3_7_2_bulk_id_reference(scim):
    """RFC 7644 §3.7.2: a user and a group naming it by bulkId."""
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "qwerty",
         "data": {"schemas": [USER], "userName": "Alice"}},
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
         "data": {"schemas": [GROUP], "displayName": "Tour Guides",
                  "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
    ])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["schemas"] == [BULK_RESPONSE]
    user_op, group_op = body["Operations"]
    assert user_op["status"] == "201" and user_op["bulkId"] == "qwerty"
    assert group_op["status"] == "201" and group_op["method"] == "POST"
    user_id = user_op["location"].rsplit("/", 1)[1]
    group = scim.get("/Groups/" + group_op["location"].rsplit("/", 1)[1]).get_json()
    assert group["members"][0]["value"] == user_id
    assert group["members"][0]["display"] == "Alice"
    assert user_op["version"].startswith('W/"')


def test_forward_reference(scim):
    """The group comes first and names a user created later in the same request."""
    r = bulk(scim, [
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP], "displayName": "Forward",
                  "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u1",
         "data": {"schemas": [USER], "userName": "fwd1@example.com"}},
        {"method": "POST", "path": "/Users", "bulkId": "u2",
         "data": {"schemas": [USER], "userName": "fwd2@example.com"}},
        {"method": "PATCH", "path": "/Users/bulkId:u2",
         "data": {"schemas": [PATCH], "Operations": [
             {"op": "replace", "path": "displayName", "value": "Second"}]}},
    ])
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201", "201", "200"]
    ids = [o["location"].rsplit("/", 1)[1] for o in ops]
    group = scim.get(f"/Groups/{ids[0]}").get_json()
    assert [m["value"] for m in group["members"]] == [ids[1], ids[2]]
    assert [m["display"] for m in group["members"]] == ["fwd1@example.com", "Second"]


def test_rfc_3_7_1_circular_reference(scim):
    """RFC 7644 §3.7.1: Group A has member Group B and B has member A."""
    r = bulk(scim, [
        {"method": "POST", "path": "/Groups", "bulkId": "qwerty",
         "data": {"schemas": [GROUP], "displayName": "Group A",
                  "members": [{"type": "Group", "value": "bulkId:ytrewq"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
         "data": {"schemas": [GROUP], "displayName": "Group B",
                  "members": [{"type": "Group", "value": "bulkId:qwerty"}]}},
    ])
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201"]
    a_id, b_id = (o["location"].rsplit("/", 1)[1] for o in ops)
    a = scim.get(f"/Groups/{a_id}")
    b = scim.get(f"/Groups/{b_id}").get_json()
    assert a.get_json()["members"] == [{"value": b_id, "type": "Group", "display": "Group B",
                                        "$ref": f"{scim.org.base_url}/Groups/{b_id}"}]
    assert b["members"][0]["value"] == a_id
    # the version reported is the one after the deferred member PATCH
    assert ops[0]["version"] == a.headers["ETag"]


def test_rfc_3_7_3_mixed_methods_with_versions(scim):
    """RFC 7644 §3.7.3's request: POST, PUT, PATCH and DELETE with versions."""
    bob = scim.create_user("bob-before@example.com")
    dave = scim.create_user("dave-before@example.com", nickName="D")
    eve = scim.create_user("eve@example.com")
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "qwerty",
         "data": {"schemas": [USER], "userName": "Alice"}},
        {"method": "PUT", "path": f"/Users/{bob['id']}", "version": bob["meta"]["version"],
         "data": {"schemas": [USER], "id": bob["id"], "userName": "Bob"}},
        {"method": "PATCH", "path": f"/Users/{dave['id']}", "version": dave["meta"]["version"],
         "data": {"schemas": [PATCH], "Operations": [
             {"op": "remove", "path": "nickName"},
             {"op": "replace", "path": "userName", "value": "Dave"}]}},
        {"method": "DELETE", "path": f"/Users/{eve['id']}", "version": eve["meta"]["version"]},
    ], failOnErrors=1)
    ops = r.get_json()["Operations"]
    assert [(o["method"], o["status"]) for o in ops] == [
        ("POST", "201"), ("PUT", "200"), ("PATCH", "200"), ("DELETE", "204")]
    assert ops[1]["location"].endswith(f"/Users/{bob['id']}")
    assert ops[3]["location"].endswith(f"/Users/{eve['id']}")
    assert scim.get(f"/Users/{bob['id']}").get_json()["userName"] == "Bob"
    got = scim.get(f"/Users/{dave['id']}").get_json()
    assert got["userName"] == "Dave" and "nickName" not in got
    assert scim.get(f"/Users/{eve['id']}").status_code == 404


def test_mixed_successes_and_failures_do_not_undo_each_other(scim):
    existing = scim.create_user("taken@example.com")
    missing = str(uuid.uuid4())
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "ok1",
         "data": {"schemas": [USER], "userName": "fresh@example.com"}},
        {"method": "POST", "path": "/Users", "bulkId": "dup",
         "data": {"schemas": [USER], "userName": "TAKEN@example.com"}},
        {"method": "PATCH", "path": f"/Users/{missing}",
         "data": {"schemas": [PATCH], "Operations": [
             {"op": "replace", "path": "active", "value": False}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "needs-dup",
         "data": {"schemas": [GROUP], "displayName": "Needs dup",
                  "members": [{"value": "bulkId:dup"}]}},
        {"method": "PUT", "path": f"/Users/{existing['id']}",
         "version": 'W/"999"', "data": {"schemas": [USER], "userName": "taken@example.com"}},
        {"method": "POST", "path": "/Groups", "bulkId": "ok2",
         "data": {"schemas": [GROUP], "displayName": "Fine",
                  "members": [{"value": "bulkId:ok1"}]}},
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "x"}},
        {"method": "POST", "path": "/Groups", "bulkId": "ghost",
         "data": {"schemas": [GROUP], "displayName": "Ghost",
                  "members": [{"value": "bulkId:nobody"}]}},
    ])
    assert r.status_code == 200
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == [
        "201", "409", "404", "409", "412", "201", "400", "400", "400"]
    assert ops[1]["response"]["scimType"] == "uniqueness"
    assert ops[1]["response"]["schemas"] == [ERROR]
    assert ops[3]["response"]["status"] == "409"
    assert ops[6]["response"]["scimType"] == "invalidValue"
    assert "bulkId" in ops[7]["response"]["detail"]
    assert "nobody" in ops[8]["response"]["detail"]
    # the successes are stored although others failed
    fine = scim.get(ops[5]["location"].replace(scim.org.base_url, "")).get_json()
    assert fine["members"][0]["display"] == "fresh@example.com"
    listed = scim.get('/Users?filter=userName eq "fresh@example.com"').get_json()
    assert listed["totalResults"] == 1


def test_fail_on_errors_stops_processing(scim):
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "a",
         "data": {"schemas": [USER], "userName": "stop-a@example.com"}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER]}},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"schemas": [USER]}},
        {"method": "POST", "path": "/Users", "bulkId": "d",
         "data": {"schemas": [USER], "userName": "stop-d@example.com"}},
    ], failOnErrors=2)
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "400", "400"]
    assert scim.get('/Users?filter=userName eq "stop-d@example.com"').get_json()[
        "totalResults"] == 0


def test_limits_are_413(scim, app):
    old_ops, old_size = app.config["SCIM_BULK_MAX_OPERATIONS"], app.config["SCIM_BULK_MAX_PAYLOAD"]
    try:
        app.config["SCIM_BULK_MAX_OPERATIONS"] = 2
        ops = [{"method": "DELETE", "path": f"/Users/{uuid.uuid4()}"} for _ in range(3)]
        r = bulk(scim, ops)
        assert r.status_code == 413 and r.get_json()["status"] == "413"
        assert "maxOperations" in r.get_json()["detail"]
        app.config["SCIM_BULK_MAX_OPERATIONS"] = 1000
        app.config["SCIM_BULK_MAX_PAYLOAD"] = 500
        big = [{"method": "POST", "path": "/Users", "bulkId": f"b{i}",
                "data": {"schemas": [USER], "userName": f"big{i}@example.com"}} for i in range(10)]
        r = bulk(scim, big)
        assert r.status_code == 413 and "maxPayloadSize" in r.get_json()["detail"]
        assert scim.get('/Users?filter=userName eq "big0@example.com"').get_json()[
            "totalResults"] == 0
    finally:
        app.config["SCIM_BULK_MAX_OPERATIONS"], app.config["SCIM_BULK_MAX_PAYLOAD"] = (
            old_ops, old_size)


def test_bad_bulk_requests(scim):
    assert scim.post("/Bulk", {"Operations": []}).status_code == 400
    r = scim.post("/Bulk", {"schemas": [BULK], "Operations": []})
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidSyntax"
    r = bulk(scim, [{"method": "DELETE", "path": "/Users/x"}], failOnErrors=0)
    assert r.status_code == 400
    r = scim.client.post(scim.org.base + "/Bulk", data="{}", headers=scim.org.headers())
    assert r.status_code == 415
    # unauthenticated: the usual 401
    r = scim.client.post(scim.org.base + "/Bulk", json={"schemas": [BULK]})
    assert r.status_code == 401


def test_operations_run_as_the_caller_organization(scim):
    other = ScimClient(scim.client, make_org(scim.org.app))
    theirs = other.create_user()
    r = bulk(scim, [
        {"method": "DELETE", "path": f"/Users/{theirs['id']}"},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP], "displayName": "steal",
                  "members": [{"value": theirs["id"]}]}},
    ])
    assert [o["status"] for o in r.get_json()["Operations"]] == ["404", "400"]
    assert other.get(f"/Users/{theirs['id']}").status_code == 200


def test_bulk_writes_the_same_follow_up_jobs_as_single_requests(app):
    from models.jobs import KIND_LICENSE_CHECK, KIND_MANAGERS_ORG
    from models.memberships import RESOLVE_KIND
    from models.outbox import Job

    # The kinds a user create writes itself (a running worker may add others, e.g. mail).
    # Organization-wide jobs are coalesced, so each create goes to an organization of its own.
    written_by_create = (KIND_MANAGERS_ORG, KIND_LICENSE_CHECK, RESOLVE_KIND)
    single = ScimClient(app.test_client(), make_org(app))
    batch = ScimClient(app.test_client(), make_org(app))

    single.create_user("single-jobs@example.com")
    r = bulk(batch, [{"method": "POST", "path": "/Users", "bulkId": "j",
                      "data": {"schemas": [USER], "userName": "bulk-jobs@example.com"}}])
    assert r.get_json()["Operations"][0]["status"] == "201"
    with app.extensions["db.sessions"]() as session:
        def kinds(org_id):
            return sorted(session.scalars(select(Job.kind).where(
                Job.org_id == org_id, Job.kind.in_(written_by_create))))
        assert kinds(batch.org.id) == kinds(single.org.id)
        assert KIND_MANAGERS_ORG in kinds(batch.org.id)


def test_unbreakable_cycle_is_409(scim):
    """Two users naming each other as manager by bulkId: no Group POST to break the cycle."""
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "a",
         "data": {"schemas": [USER, ent], "userName": "cyc-a@example.com",
                  ent: {"manager": {"value": "bulkId:b"}}}},
        {"method": "POST", "path": "/Users", "bulkId": "b",
         "data": {"schemas": [USER, ent], "userName": "cyc-b@example.com",
                  ent: {"manager": {"value": "bulkId:a"}}}},
    ])
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == ["409", "409"]
    assert "circular" in ops[0]["response"]["detail"]


def test_bulk_id_in_a_user_manager_reference(scim):
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    r = bulk(scim, [
        {"method": "POST", "path": "/Users", "bulkId": "emp",
         "data": {"schemas": [USER, ent], "userName": "emp@example.com",
                  ent: {"manager": {"value": "bulkId:boss"}}}},
        {"method": "POST", "path": "/Users", "bulkId": "boss",
         "data": {"schemas": [USER], "userName": "boss@example.com"}},
    ])
    ops = r.get_json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201"]
    boss_id = ops[1]["location"].rsplit("/", 1)[1]
    emp = scim.get(ops[0]["location"].replace(scim.org.base_url, "")).get_json()
    assert emp[ent]["manager"]["value"] == boss_id
