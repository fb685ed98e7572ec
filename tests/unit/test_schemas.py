"""Loading a resource through the schema limited to the attributes a body sends
(``schemas.shaped_schema``) accepts and refuses what the whole schema does."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from web.scim import schemas
from web.scim.definitions import ENTERPRISE_USER_SCHEMA_ID as ENT
from web.scim.definitions import USER_TYPE, canonicalize
from web.scim.errors import InvalidValue

BODIES = [
    {"userName": "a@example.com", "active": "False", "name": {"givenName": "A"}},
    {"userName": "b@example.com", "emails": [{"value": "b@example.com", "primary": True}],
     ENT: {"department": "R&D", "manager": {"value": "m1"}}, "id": "ignored", "nickName": None},
    {"userName": "c@example.com", "password": "s3cret!", "roles": [], "displayName": "C"},
]
REFUSED = [
    {"userName": "d@example.com", "favouriteColour": "blue"},  # unknown attribute
    {"displayName": "no userName"},  # the required attribute missing
    {"userName": "e@example.com", "active": "maybe"},  # a wrong type
    {"userName": "f@example.com", "name": {"givenName": 7}},  # a wrong type inside
]


@pytest.mark.parametrize("body", BODIES)
def test_loads_what_the_whole_schema_loads(body):
    data = canonicalize(USER_TYPE, body)
    assert schemas.shaped_schema(USER_TYPE, data).load(data) == (
        schemas.resource_schema(USER_TYPE).load(data)
    )


@pytest.mark.parametrize("body", REFUSED)
def test_refuses_what_the_whole_schema_refuses(body):
    data = canonicalize(USER_TYPE, body)
    with pytest.raises(ValidationError) as whole:
        schemas.resource_schema(USER_TYPE).load(data)
    with pytest.raises(ValidationError) as shaped:
        schemas.shaped_schema(USER_TYPE, data).load(data)
    assert shaped.value.messages == whole.value.messages
    with pytest.raises(InvalidValue):
        schemas.load_resource(USER_TYPE, data)


def test_one_schema_per_shape_and_only_the_fields_sent():
    first = schemas.shaped_schema(USER_TYPE, {"userName": "x", "active": True})
    assert schemas.shaped_schema(USER_TYPE, {"active": False, "userName": "y"}) is first
    assert set(first.load_fields) == {"userName", "active"}
    other = schemas.shaped_schema(USER_TYPE, {"userName": "x", ENT: {"department": "D"}})
    assert other is not first and set(other.load_fields) == {"userName", "extension_0"}
