"""The group requests Microsoft Entra ID sends, replayed in order (reference §3, E1, E8, E11).

Sources: "Tutorial: Develop and plan provisioning for a SCIM endpoint"
(learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups)
and "Known issues ... SCIM compatibility" (aadOptscim062020). The tutorial's member id
"f648f8d5ea4e4cd38e9c" is replaced by the ids our service returned for the users.
"""

from __future__ import annotations

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def values(scim, gid):
    got = scim.get(f"/Groups/{gid}?attributes=members").get_json()
    return [m["value"] for m in got.get("members", [])]


def test_entra_group_conversation(scim):
    users = [scim.create_user()["id"] for _ in range(3)]

    # E1 credentials check: a random group by displayName, members excluded
    r = scim.get('/Groups?filter=displayName eq "7e8b3c1a-random"&excludedAttributes=members')
    assert r.status_code == 200
    assert r.get_json() == {"schemas": [LIST], "totalResults": 0, "itemsPerPage": 0,
                            "startIndex": 1, "Resources": []}

    # E11 create: an extra Microsoft schema URN and a readOnly meta are accepted
    r = scim.post("/Groups", {
        "schemas": [GROUP, MS_GROUP],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
    })
    assert r.status_code == 201, r.get_json()
    group = r.get_json()
    gid = group["id"]
    assert group["displayName"] == "displayName"
    assert group["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert group["schemas"] == [GROUP]

    # E11 reads with excludedAttributes=members
    r = scim.get(f"/Groups/{gid}?excludedAttributes=members")
    assert r.status_code == 200 and "members" not in r.get_json()
    r = scim.get('/Groups?excludedAttributes=members&filter=displayName eq "displayName"')
    body = r.get_json()
    assert body["totalResults"] == 1 and "members" not in body["Resources"][0]

    # E11 rename
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "displayName",
         "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]})
    assert r.status_code == 200
    assert r.get_json()["displayName"].endswith("updatedDisplayName")

    # E11 capitalised Add with a value list ("$ref": null)
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": u} for u in users]}]})
    assert r.status_code == 200, r.get_json()
    assert "members" not in r.get_json()
    assert values(scim, gid) == users

    # E11 capitalised Remove with a value list: removes those members only, never all
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": users[0]}]}]})
    assert r.status_code == 200
    assert values(scim, gid) == users[1:]

    # E8 aadOptscim062020 remove form
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{users[1]}"]'}]})
    assert r.status_code == 200
    assert values(scim, gid) == users[2:]

    # E12 restart: the same Add again is a no-op that keeps version and lastModified
    before = scim.get(f"/Groups/{gid}?excludedAttributes=members").get_json()["meta"]
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": users[2]}]}]})
    assert r.status_code == 200
    after = r.get_json()["meta"]
    assert after["version"] == before["version"]
    assert after["lastModified"] == before["lastModified"]

    # E11 delete
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert scim.get(f"/Groups/{gid}").status_code == 404


def test_entra_member_before_user_is_kept_pending(scim):
    """Entra sends members in any order; a member it names by an unknown id is kept."""
    r = scim.post("/Groups", {"schemas": [GROUP, MS_GROUP], "displayName": "early"})
    gid = r.get_json()["id"]
    r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": "f648f8d5ea4e4cd38e9c"}]}]})
    assert r.status_code == 200
    assert values(scim, gid) == ["f648f8d5ea4e4cd38e9c"]
