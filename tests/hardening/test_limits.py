"""Limits: advertised in /ServiceProviderConfig where SCIM has a place for them, enforced
everywhere, each with a SCIM error (never a 500, never a partial write)."""

from __future__ import annotations

import pytest

from tests.conftest import ScimClient, make_org
from tests.hardening.helpers import BULK_SCHEMA, PATCH_SCHEMA, USER_SCHEMA, assert_scim_error

LIMITS = {
    "WORKTEAM_MAX_BODY_BYTES": "20000",
    "WORKTEAM_MAX_PAGE_SIZE": "5",
    "WORKTEAM_MAX_FILTER_LENGTH": "200",
    "WORKTEAM_MAX_PATCH_OPERATIONS": "3",
    "WORKTEAM_MAX_VALUE_LENGTH": "50",
    "WORKTEAM_BULK_MAX_OPERATIONS": "2",
    "WORKTEAM_BULK_MAX_PAYLOAD_BYTES": "10000",
}


@pytest.fixture(scope="module")
def limited(app_env):
    from web import create_app

    application = create_app({"ENV_OVERRIDES": {**app_env, **LIMITS}, "TESTING": True})
    yield application
    application.extensions["db.engine"].dispose()


@pytest.fixture
def scim(limited):
    return ScimClient(limited.test_client(), make_org(limited))


def test_limits_are_advertised(scim):
    spc = scim.get("/ServiceProviderConfig").get_json()
    assert spc["filter"]["maxResults"] == 5
    assert spc["pagination"]["maxPageSize"] == 5
    assert spc["bulk"]["maxOperations"] == 2
    assert spc["bulk"]["maxPayloadSize"] == 10000


def test_page_size_is_capped(scim):
    for i in range(7):
        scim.create_user(f"p{i}@example.com")
    body = scim.get("/Users?count=1000").get_json()
    assert body["totalResults"] == 7 and body["itemsPerPage"] == 5


def test_body_size(scim):
    response = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "big@example.com",
                                    "nickName": "x" * 30000})
    assert_scim_error(response, 413)
    assert scim.get("/Users").get_json()["totalResults"] == 0


def test_filter_length_and_complexity(scim):
    too_long = 'userName eq "' + "a" * 300 + '"'
    body = assert_scim_error(scim.get("/Users", query_string={"filter": too_long}), 400)
    assert body["scimType"] == "invalidFilter"
    for text in ["(" * 60 + "userName pr" + ")" * 60, " or ".join(["userName pr"] * 60)]:
        body = assert_scim_error(scim.get("/Users", query_string={"filter": text}), 400)
        assert body["scimType"] == "invalidFilter", body


def test_patch_operation_count_and_value_length(scim):
    user = scim.create_user("v@example.com")
    ops = [{"op": "replace", "path": "title", "value": str(i)} for i in range(4)]
    assert_scim_error(scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_SCHEMA],
                                                          "Operations": ops}), 400)
    long_value = [{"op": "replace", "path": "title", "value": "t" * 51}]
    assert_scim_error(scim.patch(f"/Users/{user['id']}", {"schemas": [PATCH_SCHEMA],
                                                          "Operations": long_value}), 400)
    assert_scim_error(scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "u" * 60}), 400)
    assert scim.get(f"/Users/{user['id']}").get_json()["meta"]["version"] == user["meta"]["version"]


def test_bulk_limits(scim):
    op = {"method": "POST", "path": "/Users", "data": {"schemas": [USER_SCHEMA],
                                                       "userName": "b@example.com"}}
    too_many = [{**op, "bulkId": str(i)} for i in range(3)]
    assert_scim_error(scim.post("/Bulk", {"schemas": [BULK_SCHEMA], "Operations": too_many}), 413)
    big = [{**op, "bulkId": "x", "data": {**op["data"], "nickName": "n" * 15000}}]
    assert_scim_error(scim.post("/Bulk", {"schemas": [BULK_SCHEMA], "Operations": big}), 413)
    assert scim.get("/Users").get_json()["totalResults"] == 0


def test_make_org_still_works_without_limits(app):
    assert ScimClient(app.test_client(), make_org(app)).get("/Users").status_code == 200
