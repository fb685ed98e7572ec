def test_create_and_get(scim):
    user = scim.create_user("smoke@example.com", name={"givenName": "S", "familyName": "M"})
    got = scim.get(f"/Users/{user['id']}")
    assert got.status_code == 200
    assert got.get_json()["userName"] == "smoke@example.com"
