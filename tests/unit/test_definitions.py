"""RFC 7643 schema definitions: /Schemas output, path resolution, canonicalize."""

from __future__ import annotations

import copy
import json

import pytest

from web.scim import definitions as d
from web.scim.definitions import (
    ENTERPRISE_USER_SCHEMA_ID as ENT,
)
from web.scim.definitions import (
    GROUP_TYPE,
    USER_TYPE,
    WORKTEAM_USER_SCHEMA_ID,
    Attribute,
    ResourceType,
    Schema,
    canonicalize,
    resolve_path,
    resolve_schema,
)
from web.scim.errors import InvalidPath

BASE = "https://example.com/scim/v2/org1"


def _flat(attrs: list[dict], prefix: str = "") -> dict[str, dict]:
    out: dict[str, dict] = {}
    for a in attrs:
        out[prefix + a["name"]] = a
        out.update(_flat(a.get("subAttributes", []), prefix + a["name"] + "."))
    return out


def _walk(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


USER_ATTRS = _flat(d.USER.to_scim(BASE)["attributes"])
GROUP_ATTRS = _flat(d.GROUP.to_scim(BASE)["attributes"])
ENT_ATTRS = _flat(d.ENTERPRISE_USER.to_scim(BASE)["attributes"])


# --------------------------------------------------------------------------- /Schemas output


def test_constants():
    assert d.USER_SCHEMA_ID == "urn:ietf:params:scim:schemas:core:2.0:User"
    assert d.ENTERPRISE_USER_SCHEMA_ID == (
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    )
    assert d.GROUP_SCHEMA_ID == "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert WORKTEAM_USER_SCHEMA_ID == (
        "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"
    )
    assert [s.id for s in d.ALL_SCHEMAS] == [
        d.USER_SCHEMA_ID,
        d.GROUP_SCHEMA_ID,
        ENT,
        WORKTEAM_USER_SCHEMA_ID,
    ]
    assert d.RESOURCE_TYPES == {"User": USER_TYPE, "Group": GROUP_TYPE}


def test_schema_resource_shape():
    out = d.USER.to_scim(BASE)
    assert out["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert out["id"] == d.USER_SCHEMA_ID
    assert out["name"] == "User"
    assert out["description"] == "User Account"
    assert out["meta"] == {
        "resourceType": "Schema",
        "location": f"{BASE}/Schemas/{d.USER_SCHEMA_ID}",
    }
    json.dumps(out)  # serialisable


@pytest.mark.parametrize("schema", d.ALL_SCHEMAS, ids=lambda s: s.name)
def test_to_scim_camel_case_no_nulls(schema):
    """Entra: /Schemas camelCase, no nulls (reference doc §3 'Rules stated by Microsoft')."""
    out = schema.to_scim(BASE)
    allowed = {
        "name",
        "type",
        "multiValued",
        "description",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "canonicalValues",
        "referenceTypes",
        "subAttributes",
    }
    for attr in _flat(out["attributes"]).values():
        assert set(attr) <= allowed
        assert {"name", "type", "multiValued", "required", "caseExact"} <= set(attr)
        assert ("subAttributes" in attr) == (attr["type"] == "complex")
        assert ("referenceTypes" in attr) == (attr["type"] == "reference")
    for _key, value in _walk(out):
        assert value is not None


def test_common_attributes_not_in_schemas_output():
    """RFC 7643 §3.1: id, externalId, meta are not published in the schema's attributes."""
    for schema in d.ALL_SCHEMAS:
        names = {a["name"] for a in schema.to_scim(BASE)["attributes"]}
        assert not names & {"id", "externalId", "meta", "schemas"}
    assert [a.name for a in d.COMMON_ATTRIBUTES] == ["id", "externalId", "meta"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # RFC 7643 §8.7.1 User
        (
            "userName",
            {
                "type": "string",
                "required": True,
                "caseExact": False,
                "uniqueness": "server",
                "mutability": "readWrite",
                "returned": "default",
            },
        ),
        ("name", {"type": "complex", "multiValued": False}),
        ("name.honorificSuffix", {"type": "string"}),
        ("profileUrl", {"type": "reference", "referenceTypes": ["external"]}),
        ("active", {"type": "boolean"}),
        (
            "password",
            {"mutability": "writeOnly", "returned": "never", "caseExact": False},
        ),
        ("emails", {"multiValued": True, "type": "complex"}),
        ("emails.type", {"canonicalValues": ["work", "home", "other"]}),
        ("emails.primary", {"type": "boolean"}),
        (
            "phoneNumbers.type",
            {"canonicalValues": ["work", "home", "mobile", "fax", "pager", "other"]},
        ),
        (
            "ims.type",
            {"canonicalValues": ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]},
        ),
        ("photos.value", {"type": "reference", "referenceTypes": ["external"]}),
        ("photos.type", {"canonicalValues": ["photo", "thumbnail"]}),
        ("addresses.postalCode", {"type": "string"}),
        ("addresses.primary", {"type": "boolean"}),
        ("groups", {"mutability": "readOnly", "multiValued": True}),
        ("groups.$ref", {"referenceTypes": ["User", "Group"], "mutability": "readOnly"}),
        ("groups.type", {"canonicalValues": ["direct", "indirect"]}),
        ("x509Certificates.value", {"type": "binary"}),
        ("entitlements.primary", {"type": "boolean"}),
        ("roles.display", {"type": "string"}),
    ],
)
def test_user_schema_rfc7643_8_7_1(path, expected):
    attr = USER_ATTRS[path]
    for key, value in expected.items():
        assert attr[key] == value, (path, key)


def test_user_schema_attribute_list_rfc7643_4_1():
    assert [a.name for a in d.USER.attributes] == [
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
    ]
    assert [a.name for a in d.USER.attr("name").sub_attributes] == [
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    ]
    for multi in ("emails", "phoneNumbers", "ims", "photos", "entitlements", "roles"):
        assert [a.name for a in d.USER.attr(multi).sub_attributes] == [
            "value",
            "display",
            "type",
            "primary",
        ]
    assert [a.name for a in d.USER.attr("addresses").sub_attributes] == [
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    ]
    assert [a.name for a in d.USER.attr("groups").sub_attributes] == [
        "value",
        "$ref",
        "display",
        "type",
    ]


def test_group_and_enterprise_schemas():
    assert GROUP_ATTRS["displayName"]["required"] is True  # §4.2 "REQUIRED"
    assert GROUP_ATTRS["members"]["multiValued"] is True
    for sub in ("value", "$ref", "type", "display"):
        assert GROUP_ATTRS[f"members.{sub}"]["mutability"] == "immutable"
    assert GROUP_ATTRS["members.type"]["canonicalValues"] == ["User", "Group"]
    assert GROUP_ATTRS["members.$ref"]["referenceTypes"] == ["User", "Group"]
    assert [a.name for a in d.ENTERPRISE_USER.attributes] == [
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    ]
    assert ENT_ATTRS["manager"]["type"] == "complex"
    assert ENT_ATTRS["manager.displayName"]["mutability"] == "readOnly"
    assert ENT_ATTRS["manager.$ref"]["referenceTypes"] == ["User"]
    assert ENT_ATTRS["manager.value"]["mutability"] == "readWrite"


def test_workteam_extension_read_only():
    attrs = {a.name: a for a in d.WORKTEAM_USER.attributes}
    assert set(attrs) == {"managerState", "managerStateReason", "licenseState"}
    assert all(a.mutability == "readOnly" for a in attrs.values())
    assert attrs["managerState"].canonical_values == ("none", "pending", "resolved", "invalid")
    assert attrs["licenseState"].canonical_values == ("none", "licensed", "unlicensed")


# Where scim2-models (a pydantic model of the same RFC) deliberately differs from us: it
# derives caseExact=true for references/ids and required=true for manager sub-attributes
# from its own conventions; RFC 7643 §8.7.1 says caseExact false / required false for these.
# members.display is not in §8.7.1; we make it immutable like its siblings (§4.2).
KNOWN_DIFFERENCES = {
    ("groups.$ref", "caseExact"),
    ("groups.$ref", "referenceTypes"),
    ("groups.value", "caseExact"),
    ("password", "caseExact"),
    ("photos.value", "caseExact"),
    ("profileUrl", "caseExact"),
    ("x509Certificates.value", "caseExact"),
    ("members.$ref", "caseExact"),
    ("members.display", "mutability"),
    ("members.value", "caseExact"),
    ("manager.$ref", "required"),
    ("manager.$ref", "caseExact"),
    ("manager.value", "required"),
    ("manager.value", "caseExact"),
}


def test_cross_check_with_scim2_models():
    scim2 = pytest.importorskip("scim2_models")
    keys = (
        "type",
        "multiValued",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "canonicalValues",
        "referenceTypes",
    )
    pairs = [
        (scim2.User, d.USER),
        (scim2.Group, d.GROUP),
        (scim2.EnterpriseUser, d.ENTERPRISE_USER),
    ]
    diffs = set()
    for model, schema in pairs:
        theirs = _flat(
            model.to_schema().model_dump(mode="json", by_alias=True, exclude_none=True)[
                "attributes"
            ]
        )
        ours = _flat(schema.to_scim(BASE)["attributes"])
        assert set(theirs) == set(ours), schema.id
        for name in ours:
            for key in keys:
                if theirs[name].get(key) != ours[name].get(key):
                    diffs.add((name, key))
    assert diffs == KNOWN_DIFFERENCES


def test_resource_types_rfc7643_6():
    out = USER_TYPE.to_scim(BASE)
    assert out == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": d.USER_SCHEMA_ID,
        "schemaExtensions": [
            {"schema": ENT, "required": False},
            {"schema": WORKTEAM_USER_SCHEMA_ID, "required": False},
        ],
        "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }
    group = GROUP_TYPE.to_scim(BASE)
    assert group["endpoint"] == "/Groups"
    assert group["schema"] == d.GROUP_SCHEMA_ID
    assert "schemaExtensions" not in group


def test_attribute_sub_lookup_case_insensitive_and_frozen():
    emails = d.USER.attr("EMAILS")
    assert emails is not None and emails.name == "emails"
    assert emails.sub("VALUE").name == "value"
    assert emails.sub("nope") is None
    assert d.USER.attr("nope") is None
    with pytest.raises(AttributeError):
        emails.name = "x"  # type: ignore[misc]
    hash(USER_TYPE)  # usable as a cache key


# --------------------------------------------------------------------------- resolve_path


@pytest.mark.parametrize(
    ("text", "schema_id", "attribute", "sub", "extension"),
    [
        ("userName", d.USER_SCHEMA_ID, "userName", None, False),
        ("USERNAME", d.USER_SCHEMA_ID, "userName", None, False),
        ("name.givenName", d.USER_SCHEMA_ID, "name", "givenName", False),
        ("Name.GIVENNAME", d.USER_SCHEMA_ID, "name", "givenName", False),
        ("emails.value", d.USER_SCHEMA_ID, "emails", "value", False),
        ("meta.lastModified", d.USER_SCHEMA_ID, "meta", "lastModified", False),
        ("id", d.USER_SCHEMA_ID, "id", None, False),
        ("externalId", d.USER_SCHEMA_ID, "externalId", None, False),
        ("schemas", d.USER_SCHEMA_ID, "schemas", None, False),
        ("groups.$ref", d.USER_SCHEMA_ID, "groups", "$ref", False),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            d.USER_SCHEMA_ID,
            "userName",
            None,
            False,
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:id",
            d.USER_SCHEMA_ID,
            "id",
            None,
            False,
        ),
        (f"{ENT}:manager", ENT, "manager", None, True),
        (f"{ENT.upper()}:MANAGER.VALUE", ENT, "manager", "value", True),
        (f"{ENT}:employeeNumber", ENT, "employeeNumber", None, True),
        ("employeeNumber", ENT, "employeeNumber", None, True),
        ("department", ENT, "department", None, True),
        ("manager", ENT, "manager", None, True),
        ("manager.value", ENT, "manager", "value", True),
        ("managerState", WORKTEAM_USER_SCHEMA_ID, "managerState", None, True),
    ],
)
def test_resolve_path_user(text, schema_id, attribute, sub, extension):
    p = resolve_path(USER_TYPE, text)
    assert (p.schema_id, p.attribute, p.sub_attribute, p.extension) == (
        schema_id,
        attribute,
        sub,
        extension,
    )
    assert p.parent.name == attribute
    assert p.definition.name == (sub or attribute)


def test_resolve_path_str_and_with_sub():
    assert str(resolve_path(USER_TYPE, "employeenumber")) == f"{ENT}:employeeNumber"
    assert str(resolve_path(USER_TYPE, "name.givenname")) == "name.givenName"
    emails = resolve_path(USER_TYPE, "emails")
    assert emails.with_sub("TYPE") == resolve_path(USER_TYPE, "emails.type")
    with pytest.raises(InvalidPath):
        emails.with_sub("nope")
    with pytest.raises(InvalidPath):
        resolve_path(USER_TYPE, "userName").with_sub("x")


def test_resolve_path_group():
    p = resolve_path(GROUP_TYPE, "members.value")
    assert (p.schema_id, p.attribute, p.sub_attribute) == (d.GROUP_SCHEMA_ID, "members", "value")
    assert resolve_path(GROUP_TYPE, "meta.created").schema_id == d.GROUP_SCHEMA_ID
    with pytest.raises(InvalidPath):
        resolve_path(GROUP_TYPE, "userName")
    with pytest.raises(InvalidPath):
        resolve_path(GROUP_TYPE, "employeeNumber")  # no extension on Group


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "nope",
        "name.nope",
        "userName.x",
        "name.givenName.x",
        "name.",
        ".name",
        "urn:ietf:params:scim:schemas:extension:other:2.0:User:x",
        f"{ENT}:userName",
        f"{ENT}",
        "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
        "password.x",
    ],
)
def test_resolve_path_invalid(text):
    with pytest.raises(InvalidPath) as exc:
        resolve_path(USER_TYPE, text)
    if text.strip():
        assert text in exc.value.detail or "Empty" in exc.value.detail


def test_resolve_path_ambiguous_extension_attribute():
    ext_a = Schema("urn:test:a", "A", "A", (Attribute("code"),))
    ext_b = Schema("urn:test:b", "B", "B", (Attribute("code"),))
    rtype = ResourceType("Thing", "/Things", d.GROUP, ((ext_a, False), (ext_b, False)))
    with pytest.raises(InvalidPath, match="Ambiguous"):
        resolve_path(rtype, "code")
    assert resolve_path(rtype, "urn:test:b:code").schema_id == "urn:test:b"


def test_resolve_schema():
    assert resolve_schema(USER_TYPE, ENT.lower()) is d.ENTERPRISE_USER
    assert resolve_schema(USER_TYPE, d.USER_SCHEMA_ID.upper()) is d.USER
    assert resolve_schema(USER_TYPE, d.GROUP_SCHEMA_ID) is None
    assert resolve_schema(GROUP_TYPE, ENT) is None


# --------------------------------------------------------------------------- canonicalize


def test_canonicalize_recursive():
    data = {
        "SCHEMAS": [d.USER_SCHEMA_ID],
        "USERNAME": "bjensen",
        "Name": {"GivenName": "Barbara", "familyname": "Jensen"},
        "Emails": [{"VALUE": "b@example.com", "Type": "work", "PRIMARY": True}],
        "Meta": {"ResourceType": "User"},
        "ID": "1",
        "externalid": "x",
        ENT.lower(): {"EmployeeNumber": "7", "MANAGER": {"Value": "m", "$REF": "u"}},
        "department": None,
        "unknownKey": {"Keep": "As is"},
        "emails_not": 1,
    }
    before = copy.deepcopy(data)
    out = canonicalize(USER_TYPE, data)
    assert data == before  # input untouched
    assert out == {
        "schemas": [d.USER_SCHEMA_ID],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}],
        "meta": {"resourceType": "User"},
        "id": "1",
        "externalId": "x",
        ENT: {"employeeNumber": "7", "manager": {"value": "m", "$ref": "u"}},
        "department": None,  # unknown at top level (Entra E4): kept, caller decides
        "unknownKey": {"Keep": "As is"},
        "emails_not": 1,
    }


def test_canonicalize_merges_extension_keys_differing_in_case():
    out = canonicalize(
        USER_TYPE,
        {ENT: {"department": "R&D"}, ENT.upper(): {"COSTCENTER": "42"}},
    )
    assert out == {ENT: {"department": "R&D", "costCenter": "42"}}


def test_canonicalize_keeps_odd_shapes():
    out = canonicalize(USER_TYPE, {"emails": ["not-an-object"], "name": "str", ENT: "x"})
    assert out == {"emails": ["not-an-object"], "name": "str", ENT: "x"}


def test_canonicalize_group():
    out = canonicalize(
        GROUP_TYPE, {"DisplayName": "G", "MEMBERS": [{"Value": "1", "$Ref": "r", "Display": "x"}]}
    )
    assert out == {"displayName": "G", "members": [{"value": "1", "$ref": "r", "display": "x"}]}
