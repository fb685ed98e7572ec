"""Projection without attributes/excludedAttributes (the shortcut every page and lookup takes)
gives what the general RFC 7644 §3.4.2.5 projection gives, and JSON in and out of the hot
paths (models/jsoncodec.py) is what the standard library gives."""

from __future__ import annotations

import json

import pytest

from models import jsoncodec
from web.scim import definitions as d
from web.scim.definitions import ENTERPRISE_USER_SCHEMA_ID as ENT
from web.scim.definitions import WORKTEAM_USER_SCHEMA_ID as WT
from web.scim.listing import _project_asked, _project_default, project

# A type whose core and extension hide something on "request" and "never".
SECRETIVE_EXT = d.Schema("urn:test:secretive", "S", "S", (
    d.Attribute("shown"), d.Attribute("pin", returned="never"),
    d.Attribute("notes", returned="request"),
))
SECRETIVE = d.ResourceType("Secretive", "/Secretive", d.Schema("urn:test:core", "C", "C", (
    d.Attribute("name"), d.Attribute("token", returned="never"),
    d.Attribute("audit", returned="request"), d.Attribute("kind", returned="always"),
)), ((SECRETIVE_EXT, False),))

USER_RESOURCES = [
    {"schemas": [d.USER_SCHEMA_ID], "id": "1", "userName": "a", "password": "secret",
     "PASSWORD": "secret too", "unknownThing": 1, "emails": [{"value": "a@x", "primary": True}],
     ENT: {"manager": {"value": "2", "$ref": "r", "displayName": "B"}, "employeeNumber": "7"},
     WT: {"managerState": "resolved"}, "meta": {"resourceType": "User", "version": 'W/"1"'}},
    {"schemas": [d.USER_SCHEMA_ID, ENT], "id": "2", ENT: {}, ENT.upper(): {"department": "x"},
     d.USER_SCHEMA_ID: {"odd": True}, "urn:unknown:ext": {"a": 1}},
    {},
    {"schemas": [d.USER_SCHEMA_ID, ENT, WT], "id": "3", "userName": "c", "name": {"givenName": "C"},
     ENT: {"department": "d"}, WT: {"licenseState": "assigned"}},  # as a page renders users
]
SECRETIVE_RESOURCES = [
    {"schemas": ["urn:test:core"], "name": "n", "token": "t", "Audit": "a", "kind": "k",
     "urn:test:secretive": {"shown": 1, "PIN": 2, "notes": 3}},
    {"urn:test:secretive": {"pin": 2}, "URN:TEST:SECRETIVE": {"notes": 3, "shown": 4}},
]


@pytest.mark.parametrize(("rtype", "resource"), [
    *((d.USER_TYPE, r) for r in USER_RESOURCES),
    *((SECRETIVE, r) for r in SECRETIVE_RESOURCES),
    *((d.GROUP_TYPE, r) for r in [{"displayName": "g", "members": [{"value": "1"}]}]),
])
def test_shortcut_equals_general_projection(rtype: d.ResourceType, resource: dict) -> None:
    assert _project_default(resource, rtype) == _project_asked(resource, rtype, set(), set())
    assert project(resource, rtype) == _project_asked(resource, rtype, set(), set())


def test_shortcut_returns_a_user_with_nothing_hidden_as_it_is() -> None:
    user = USER_RESOURCES[3]
    assert _project_default(user, d.USER_TYPE) is user


def test_shortcut_hides_never_and_request() -> None:
    out = project(SECRETIVE_RESOURCES[0], SECRETIVE)
    assert out == {"schemas": ["urn:test:core"], "name": "n", "kind": "k",
                   "urn:test:secretive": {"shown": 1}}
    assert "password" not in project(USER_RESOURCES[0], d.USER_TYPE)
    assert "urn:test:secretive" not in project(SECRETIVE_RESOURCES[1], SECRETIVE)


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "é\u2028", {"b": ""}]},
    {"big": 2**70, "neg": -(2**65)},  # beyond orjson's 64 bits: the standard library's turn
    {"text": "line\nbreak \"quoted\" \\ slash </script>"},
    [],
])
def test_json_codec_matches_the_standard_library(value: object) -> None:
    encoded = jsoncodec.dumps(value)
    assert json.loads(encoded) == value
    assert jsoncodec.loads(encoded) == value
    assert jsoncodec.loads(memoryview(encoded)) == value
    assert jsoncodec.loads(encoded.decode()) == value


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "é", {"b": ""}]},
    {"big": [2**70, -(2**65)]},  # beyond orjson's 64 bits: copy.deepcopy's turn
])
def test_json_codec_clone_is_an_equal_deep_copy(value: dict) -> None:
    copied = jsoncodec.clone(value)
    assert copied == value
    next(iter(copied.values())).append("added")  # the copy shares nothing with the original
    assert copied != value


def test_json_codec_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError):
        jsoncodec.loads(b"{not json")
