"""Every error is a SCIM error body (RFC 7644 §3.12) with the right status and scimType, and a
failed request changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TEST_ENV

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def _error(response, status, scim_type=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/scim+json")
    body = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "raw",
    ['{"schemas": [', "not json", "", "[1, 2]", '"a string"', b"\xff\xfe{}",
     '{"userName": "a", "userName": "b", "schemas": []}'],
)
def test_malformed_json_is_invalid_syntax(scim, raw):
    response = scim.request("POST", "/Users", data=raw,
                            headers={"Content-Type": "application/scim+json"})
    _error(response, 400, "invalidSyntax")
    assert scim.get("/Users?count=0").get_json()["totalResults"] == 0


@pytest.mark.parametrize(
    "body, word",
    [
        ({"schemas": [CORE]}, "userName"),
        ({"schemas": [CORE], "userName": 42}, "userName"),
        ({"schemas": [CORE], "userName": "a@x", "active": "maybe"}, "active"),
        ({"schemas": [CORE], "userName": "a@x", "name": "Barbara"}, "name"),
        ({"schemas": [CORE], "userName": "a@x", "emails": {"value": "x"}}, "emails"),
        ({"schemas": [CORE], "userName": "a@x", "emails": [{"value": 3}]}, "emails"),
        ({"schemas": [CORE], "userName": "a@x", "favouriteColour": "blue"}, "favouriteColour"),
        ({"schemas": [CORE], "userName": "a@x",
          "emails": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}]},
         "primary"),
        ({"userName": "a@x"}, "schemas"),
        ({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a@x"},
         "schemas"),
    ],
)
def test_wrong_values_are_invalid_value(scim, body, word):
    detail = _error(scim.post("/Users", body), 400, "invalidValue")["detail"]
    assert word in detail


def test_null_unknown_attributes_are_tolerated(scim):
    """Entra's older create example sends top-level "department": null, "manager": null."""
    body = {"schemas": [CORE], "userName": "nulls@example.com", "department": None,
            "manager": None, "displayName": None}
    assert scim.post("/Users", body).status_code == 201


def test_value_longer_than_limit(scim, app):
    limit = app.config["SCIM_MAX_VALUE_LENGTH"]
    body = {"schemas": [CORE], "userName": "long@example.com", "title": "x" * (limit + 1)}
    _error(scim.post("/Users", body), 400, "invalidValue")


def test_unknown_id_is_404(scim):
    # The id Okta's spec test uses.
    _error(scim.get("/Users/010101001010101011001010101011"), 404)
    _error(scim.put("/Users/010101001010101011001010101011",
                    {"schemas": [CORE], "userName": "x@y"}), 404)


def test_body_over_the_limit_is_413(scim, app):
    size = app.config["MAX_CONTENT_LENGTH"] + 10
    raw = json.dumps({"schemas": [CORE], "userName": "big", "title": "x" * size})
    _error(scim.request("POST", "/Users", data=raw,
                        headers={"Content-Type": "application/scim+json"}), 413)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml",
                                          "application/x-www-form-urlencoded"])
def test_unsupported_media_type_is_415(scim, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = scim.request("POST", "/Users", data='{"schemas":[],"userName":"x"}',
                            headers=headers)
    _error(response, 415)


@pytest.mark.parametrize("content_type", ["application/json", "application/scim+json",
                                          "application/scim+json; charset=utf-8",
                                          "Application/SCIM+JSON"])
def test_both_json_media_types_are_accepted(scim, content_type):
    body = json.dumps({"schemas": [CORE], "userName": f"ct-{hash(content_type)}@example.com"})
    response = scim.request("POST", "/Users", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/Nope", "/Users/x/y", "/", "/Userz"])
def test_unknown_scim_route_is_404(scim, path):
    _error(scim.get(path), 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_me_is_501_after_authentication(scim, method):
    """RFC 7644 §3.11: /Me is not supported (the token names no user); a bad token is 401."""
    body = {"schemas": [CORE], "userName": "me@example.com"} if method in ("POST", "PUT") else None
    _error(scim.request(method, "/Me", body), 501)
    assert scim.request(method, "/Me", body, headers={"Authorization": "Bearer nope"}
                        ).status_code == 401


def test_wrong_method_is_405(scim):
    _error(scim.request("DELETE", "/Users"), 405)


def test_unexpected_error_is_500_without_internals():
    from web import create_app

    app = create_app({"ENV_OVERRIDES": TEST_ENV})

    @app.get("/scim/v2/boom")
    def boom():
        raise RuntimeError("secret internals: /etc/passwd at line 42")

    response = app.test_client().get("/scim/v2/boom")
    body = _error(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert body["detail"] == "Internal server error"
