"""``active_only``: which PATCH bodies set ``active`` and nothing else (the one-statement
path), checked against ``apply_patch``, the general path, as the oracle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web.scim.definitions import USER_TYPE
from web.scim.patch import PATCH_OP_SCHEMA, active_only, apply_patch

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com", "displayName": "Ada", "active": True}


def body(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


@pytest.mark.parametrize(("patch", "expected"), [
    (body({"op": "Replace", "path": "active", "value": "False"}), False),  # Entra
    (body({"op": "replace", "value": {"active": False}}), False),  # Okta
    (body({"op": "replace", "path": "active", "value": True}), True),
    (body({"op": "add", "path": "ACTIVE", "value": "true"}), True),
    (body({"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active",
           "value": False}), False),
    (body({"op": "replace", "path": "active", "value": False},
          {"op": "replace", "path": "active", "value": True}), True),  # the last one wins
])
def test_bodies_that_only_set_active(patch: dict, expected: bool) -> None:
    assert active_only(patch, 10) is expected
    resource, _ = apply_patch(USER, patch, USER_TYPE)
    assert resource == {**USER, "active": expected}


@pytest.mark.parametrize("patch", [
    body({"op": "remove", "path": "active"}),
    body({"op": "replace", "path": "active", "value": "maybe"}),  # apply_patch rejects it
    body({"op": "replace", "path": "active", "value": None}),
    body({"op": "replace", "path": "active", "value": 0}),
    body({"op": "replace", "value": {"active": False, "displayName": "X"}}),
    body({"op": "replace", "path": "active", "value": False},
         {"op": "replace", "path": "displayName", "value": "X"}),
    body({"op": "replace", "path": "active", "value": False, "extra": 1}),
    body({"op": "replace", "path": "active"}),
    body(),
    {"schemas": ["urn:example:wrong"], "Operations": [{"op": "replace", "value": {"active": 0}}]},
    {"Operations": [{"op": "replace", "path": "active", "value": False}]},
    {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "active",
                                                   "value": False}], "id": "x"},
])
def test_other_bodies_take_the_general_path(patch: dict) -> None:
    assert active_only(patch, 10) is None


def test_more_operations_than_allowed_take_the_general_path() -> None:
    patch = body(*[{"op": "replace", "path": "active", "value": True}] * 3)
    assert active_only(patch, 3) is True and active_only(patch, 2) is None


_VALUES = st.sampled_from([True, False, "True", "false", " TRUE ", "no", None, 1, {}])
_OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["replace", "Replace", "add", "remove", "copy"])},
    optional={"path": st.sampled_from(["active", "Active", "displayName", "", "active[x]"]),
              "value": st.one_of(_VALUES, st.dictionaries(
                  st.sampled_from(["active", "displayName"]), _VALUES, max_size=2))},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_OPERATION, min_size=1, max_size=3))
def test_when_recognised_the_general_path_gives_the_same_resource(operations: list) -> None:
    patch = body(*operations)
    active = active_only(patch, 10)
    if active is None:
        return
    resource, _ = apply_patch(USER, patch, USER_TYPE)
    assert resource == {**USER, "active": active}
