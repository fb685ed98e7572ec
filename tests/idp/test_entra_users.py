"""The requests Microsoft Entra ID sends to provision users, replayed in order.

Source: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"
(learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups)
and "Known issues and resolutions with SCIM 2.0 protocol compliance"
(…/application-provisioning-config-problem-scim-compatibility); see
../shared/reference/idp-requests-and-rfc.md §3 (E1-E12).
"""

from __future__ import annotations

import uuid

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WORKTEAM = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _create(scim, suffix="00aa00aa-bb11-cc22-dd33-44ee44ee44ee"):
    # E4 create user (tutorial "Create User" request)
    body = {
        "schemas": [CORE, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": f"Test_User_{suffix}",
        "active": True,
        "emails": [{"primary": True, "type": "work",
                    "value": f"Test_User_{suffix[:8]}@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": [],
    }
    r = scim.post("/Users", body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_entra_test_connection_and_match(scim):
    # E1 Test Connection: a random GUID as userName, 200 with an empty ListResponse.
    r = scim.get(f'/Users?filter=userName eq "{uuid.uuid4()}"')
    assert r.status_code == 200
    assert r.get_json()["totalResults"] == 0 and r.get_json()["Resources"] == []
    user = _create(scim)
    # E3 match by userName, by externalId (quoted and the tutorial's unquoted form), by email.
    for f in ('userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"',
              'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
              "externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
              'emails[type eq "work"].value eq "Test_User_00aa00aa@testuser.com"'):
        page = scim.get("/Users", query_string={"filter": f}).get_json()
        assert page["schemas"] == [LIST]
        assert [u["id"] for u in page["Resources"]] == [user["id"]], f
    # E5 read
    assert scim.get(f"/Users/{user['id']}").get_json()["userName"].startswith("Test_User_")


def test_entra_create_tolerates_nulls_and_malformed_urn(scim):
    """E4, older tutorial example: top-level "department": null, "manager": null and the
    malformed URN "…enterprise:2.0User" in schemas."""
    body = {"schemas": [CORE, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "userName": "old.example@contoso.com", "active": True, "department": None,
            "manager": None, "externalId": "old"}
    assert scim.post("/Users", body).status_code == 201


def test_entra_update_without_flag(scim):
    user = _create(scim)
    # E6: one op per attribute, capitalised ops, value-filter path on emails.
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": 'emails[type eq "work"].value',
         "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"}]})
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert [e["value"] for e in got["emails"] if e["type"] == "work"] == [
        "updatedEmail@microsoft.com"]
    assert got["name"]["familyName"] == "updatedFamilyName"
    assert got[ENTERPRISE]["employeeNumber"] == "Eqpj"
    # "Add on a filtered path whose entry does not exist yet must create it."
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"}]})
    assert {"type": "mobile", "value": "+1 555 0100"} in r.get_json()["phoneNumbers"]
    # E7 disable without the flag: the string "False"; enable: "True".
    for text, value in (("False", False), ("True", True)):
        r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "active", "value": text}]})
        assert r.status_code == 200 and r.get_json()["active"] is value


def test_entra_update_with_aadoptscim062020(scim):
    user = _create(scim)
    # E8: disable with a real boolean; add single-valued in lower case; path-less replace whose
    # keys are attribute paths, dotted and URN-prefixed.
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False}]})
    assert r.get_json()["active"] is False
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "nickName", "value": "Babs"}]})
    assert r.get_json()["nickName"] == "Babs"
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            f"{ENTERPRISE}:employeeNumber": "Aklq"}}]})
    got = r.get_json()
    assert got["displayName"] == "Bjfe"
    assert got["name"]["givenName"] == "Kkom" and got["name"]["familyName"] == "Unua"
    assert got[ENTERPRISE]["employeeNumber"] == "Aklq"


def test_entra_manager_shapes(scim):
    """E9: the manager as a plain string, as a list with $ref, as {"value"}; removal with and
    without a value. The value is returned exactly as sent, under the extension key."""
    manager = _create(scim, "11111111-aaaa-bbbb-cccc-000000000001")
    user = _create(scim, "22222222-aaaa-bbbb-cccc-000000000002")
    path = f"{ENTERPRISE}:manager"
    shapes = [
        {"op": "add", "path": path, "value": manager["id"]},
        {"op": "Add", "path": "manager",
         "value": [{"$ref": f"http://x/Users/{manager['id']}", "value": manager["id"]}]},
        {"op": "replace", "path": path, "value": {"value": manager["id"]}},
    ]
    for op in shapes:
        r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [op]})
        assert r.status_code == 200, r.get_json()
        assert r.get_json()[ENTERPRISE]["manager"]["value"] == manager["id"]
    for op in ({"op": "Remove", "path": path},
               {"op": "Remove", "path": path, "value": [{"value": manager["id"]}]}):
        scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [shapes[0]]})
        r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [op]})
        assert r.status_code == 200, r.get_json()
        assert "manager" not in r.get_json().get(ENTERPRISE, {})
        assert r.get_json()[WORKTEAM]["managerState"] == "none"


def test_entra_restart_resends_unchanged_values_without_a_new_version(scim):
    """E12: after "Restart provisioning" Entra re-PATCHes unchanged values; no-op writes keep
    meta.version and lastModified."""
    user = _create(scim)
    body = {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "name.familyName", "value": "familyName"},
        {"op": "Replace", "path": "active", "value": "True"}]}
    r = scim.patch(f"/Users/{user['id']}", body)
    assert r.status_code == 200
    assert r.get_json()["meta"]["version"] == user["meta"]["version"]
    assert r.get_json()["meta"]["lastModified"] == user["meta"]["lastModified"]


def test_entra_deprovision(scim):
    """E10: soft delete is active=false; hard delete is DELETE then 404."""
    user = _create(scim)
    r = scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert r.get_json()["active"] is False
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").status_code == 404
