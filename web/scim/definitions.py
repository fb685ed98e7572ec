"""RFC 7643 schema definitions as data: the single source of truth of the SCIM attributes.

Used for the ``/Schemas`` and ``/ResourceTypes`` output, for ``caseExact`` comparisons in filters,
for ``mutability`` in PATCH/PUT, for ``returned`` in responses, and by the marshmallow schemas.

Pure: imports neither Flask nor SQLAlchemy.

Where RFC 7643 §8.7.1 (the machine-readable schema) and the prose of §4 disagree, the choice is
noted next to the attribute:

* ``Group.displayName`` is ``required`` (§4.2 says "REQUIRED"; the §8.7.1 JSON says false).
* ``Group.members`` gets a ``display`` sub-attribute (not in §8.7.1, but every IdP sends it and
  §8.4 shows it); its mutability is ``immutable`` like the other member sub-attributes (§4.2).
* ``User.addresses`` gets ``primary`` (§4.1.2 lists it; the §8.7.1 JSON omits it).
* The common attributes ``id``, ``externalId`` and ``meta`` (§3.1) are in ``COMMON_ATTRIBUTES``,
  not in any schema's attribute list (they are not published in ``/Schemas``), but
  ``resolve_path`` knows them and attributes them to the resource type's core schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web.scim.errors import InvalidPath

__all__ = [
    "ALL_SCHEMAS",
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "ENTERPRISE_USER_SCHEMA_ID",
    "GROUP",
    "GROUP_SCHEMA_ID",
    "GROUP_TYPE",
    "RESOURCE_TYPES",
    "RESOURCE_TYPE_SCHEMA_ID",
    "SCHEMAS_ATTRIBUTE",
    "SCHEMA_SCHEMA_ID",
    "USER",
    "USER_SCHEMA_ID",
    "USER_TYPE",
    "WORKTEAM_USER",
    "WORKTEAM_USER_SCHEMA_ID",
    "AttrPath",
    "Attribute",
    "ResourceType",
    "Schema",
    "canonicalize",
    "resolve_path",
    "resolve_schema",
]

USER_SCHEMA_ID = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA_ID = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA_ID = "urn:ietf:params:scim:schemas:core:2.0:Group"
WORKTEAM_USER_SCHEMA_ID = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"
SCHEMA_SCHEMA_ID = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA_ID = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"

TYPES = frozenset(
    {"string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"}
)
MUTABILITIES = frozenset({"readOnly", "readWrite", "immutable", "writeOnly"})
RETURNED = frozenset({"always", "never", "default", "request"})
UNIQUENESS = frozenset({"none", "server", "global"})


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (RFC 7643 §7). ``name`` is in canonical case."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    _by_lower: dict[str, Attribute] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        assert self.type in TYPES, self.type
        assert self.mutability in MUTABILITIES, self.mutability
        assert self.returned in RETURNED, self.returned
        assert self.uniqueness in UNIQUENESS, self.uniqueness
        assert bool(self.sub_attributes) == (self.type == "complex"), self.name
        self._by_lower.update({a.name.lower(): a for a in self.sub_attributes})

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def to_scim(self) -> dict[str, Any]:
        """The attribute definition as RFC 7643 §7 / §8.7.1 JSON (camelCase keys, no nulls)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.type == "reference":
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        return out


@dataclass(frozen=True)
class Schema:
    """A schema (RFC 7643 §7): a URN id and its attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_lower: dict[str, Attribute] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        self._by_lower.update({a.name.lower(): a for a in self.attributes})

    def attr(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def to_scim(self, location_base: str) -> dict[str, Any]:
        """The Schema resource served at ``{location_base}/Schemas/{id}`` (RFC 7643 §7)."""
        return {
            "schemas": [SCHEMA_SCHEMA_ID],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {
                "resourceType": "Schema",
                "location": f"{location_base}/Schemas/{self.id}",
            },
        }


# eq=False: compared and hashed by identity (the types are module constants). A value hash
# walked every attribute definition of the type: 80 calls on each `resource_schema(rtype)`.
@dataclass(frozen=True, eq=False)
class ResourceType:
    """A resource type (RFC 7643 §6): endpoint, core schema and extensions (schema, required)."""

    name: str
    endpoint: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()
    description: str = ""

    @property
    def schemas(self) -> tuple[Schema, ...]:
        """The core schema followed by the extension schemas."""
        return (self.schema, *(s for s, _ in self.extensions))

    @property
    def extension_schemas(self) -> tuple[Schema, ...]:
        return tuple(s for s, _ in self.extensions)

    def to_scim(self, location_base: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_SCHEMA_ID],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
        }
        if self.extensions:
            out["schemaExtensions"] = [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ]
        out["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{location_base}/ResourceTypes/{self.name}",
        }
        return out


# --------------------------------------------------------------------------- builders


def _str(name: str, description: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "string", description=description, **kw)


def _bool(name: str, description: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "boolean", description=description, **kw)


def _multi(
    name: str,
    description: str,
    *,
    value: Attribute | None = None,
    type_values: tuple[str, ...] = (),
    type_description: str = "A label indicating the attribute's function.",
) -> Attribute:
    """The usual multi-valued complex attribute with value, display, type and primary."""
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            value or _str("value", f"The value of the {name} attribute."),
            _str(
                "display",
                "A human-readable name, primarily used for display purposes.  READ-ONLY.",
            ),
            _str("type", type_description, canonical_values=type_values),
            _bool(
                "primary",
                "A Boolean value indicating the 'primary' or preferred attribute value for "
                "this attribute.  The primary attribute value 'true' MUST appear no more "
                "than once.",
            ),
        ),
    )


# --------------------------------------------------------------------------- common (§3.1)

COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    _str(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
    ),
    _str(
        "externalId",
        "A String that is an identifier for the resource as defined by the provisioning client.",
        case_exact=True,
    ),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        description="A complex attribute containing resource metadata.",
        sub_attributes=(
            _str(
                "resourceType",
                "The name of the resource type of the resource.",
                case_exact=True,
                mutability="readOnly",
            ),
            Attribute(
                "created",
                "dateTime",
                mutability="readOnly",
                description='The "DateTime" that the resource was added to the service provider.',
            ),
            Attribute(
                "lastModified",
                "dateTime",
                mutability="readOnly",
                description="The most recent DateTime that the details of this resource were "
                "updated at the service provider.",
            ),
            Attribute(
                "location",
                "reference",
                case_exact=True,
                mutability="readOnly",
                reference_types=("uri",),
                description="The URI of the resource being returned.",
            ),
            _str(
                "version",
                "The version of the resource being returned.",
                case_exact=True,
                mutability="readOnly",
            ),
        ),
    ),
)
# RFC 7643 §3: every resource's "schemas" (URIs of its schemas). Not an attribute of any schema,
# but filterable (RFC 7644 §3.4.2.2 example ``schemas eq "urn:...:enterprise:2.0:User"``) and
# readOnly for PATCH. Schema URNs are case-insensitive, hence caseExact false.
SCHEMAS_ATTRIBUTE = Attribute(
    "schemas",
    "reference",
    multi_valued=True,
    mutability="readOnly",
    returned="always",
    reference_types=("uri",),
    description="The schemas of the resource.",
)
_COMMON_BY_LOWER = {a.name.lower(): a for a in (*COMMON_ATTRIBUTES, SCHEMAS_ATTRIBUTE)}

# --------------------------------------------------------------------------- User (§4.1)

USER = Schema(
    USER_SCHEMA_ID,
    "User",
    "User Account",
    (
        _str(
            "userName",
            "Unique identifier for the User, typically used by the user to directly "
            "authenticate to the service provider.  Each User MUST include a non-empty "
            "userName value.  This identifier MUST be unique across the service provider's "
            "entire set of Users.  REQUIRED.",
            required=True,
            uniqueness="server",
        ),
        Attribute(
            "name",
            "complex",
            description="The components of the user's real name.",
            sub_attributes=(
                _str(
                    "formatted",
                    "The full name, including all middle names, titles, and "
                    "suffixes as appropriate, formatted for display.",
                ),
                _str(
                    "familyName",
                    "The family name of the User, or last name in most Western languages.",
                ),
                _str(
                    "givenName",
                    "The given name of the User, or first name in most Western languages.",
                ),
                _str("middleName", "The middle name(s) of the User."),
                _str(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User, or title in most Western languages.",
                ),
                _str(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User, or suffix in most Western languages.",
                ),
            ),
        ),
        _str("displayName", "The name of the User, suitable for display to end-users."),
        _str("nickName", "The casual way to address the user in real life."),
        Attribute(
            "profileUrl",
            "reference",
            reference_types=("external",),
            description="A fully qualified URL pointing to a page representing the User's "
            "online profile.",
        ),
        _str("title", 'The user\'s title, such as "Vice President".'),
        _str(
            "userType", "Used to identify the relationship between the organization and the user."
        ),
        _str("preferredLanguage", "Indicates the User's preferred written or spoken language."),
        _str(
            "locale",
            "Used to indicate the User's default location for purposes of "
            "localizing items such as currency, date time format, or numerical "
            "representations.",
        ),
        _str(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format, "
            "e.g., 'America/Los_Angeles'.",
        ),
        _bool("active", "A Boolean value indicating the User's administrative status."),
        _str(
            "password",
            "The User's cleartext password.  This attribute is intended to be used as a "
            "means to specify an initial password when creating a new User or to reset an "
            "existing User's password.",
            mutability="writeOnly",
            returned="never",
        ),
        _multi(
            "emails",
            "Email addresses for the user.  The value SHOULD be canonicalized by the service "
            "provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'.  "
            "Canonical type values of 'work', 'home', and 'other'.",
            value=_str("value", "Email addresses for the user."),
            type_values=("work", "home", "other"),
            type_description="A label indicating the attribute's function, e.g., 'work' or 'home'.",
        ),
        _multi(
            "phoneNumbers",
            "Phone numbers for the User.  The value SHOULD be canonicalized by the service "
            "provider according to the format specified in RFC 3966, e.g., "
            "'tel:+1-201-555-0123'.  Canonical type values of 'work', 'home', 'mobile', "
            "'fax', 'pager', and 'other'.",
            value=_str("value", "Phone number of the User."),
            type_values=("work", "home", "mobile", "fax", "pager", "other"),
            type_description="A label indicating the attribute's function, e.g., 'work', "
            "'home', 'mobile'.",
        ),
        _multi(
            "ims",
            "Instant messaging addresses for the User.",
            value=_str("value", "Instant messaging address for the User."),
            type_values=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
            type_description="A label indicating the attribute's function, e.g., 'aim', "
            "'gtalk', 'xmpp'.",
        ),
        _multi(
            "photos",
            "URLs of photos of the User.",
            value=Attribute(
                "value",
                "reference",
                reference_types=("external",),
                description="URL of a photo of the User.",
            ),
            type_values=("photo", "thumbnail"),
            type_description="A label indicating the attribute's function, i.e., 'photo' or "
            "'thumbnail'.",
        ),
        Attribute(
            "addresses",
            "complex",
            multi_valued=True,
            description="A physical mailing address for this User.  Canonical type values of "
            "'work', 'home', and 'other'.  This attribute is a complex type with the following "
            "sub-attributes.",
            sub_attributes=(
                _str(
                    "formatted",
                    "The full mailing address, formatted for display or use with a mailing label.",
                ),
                _str(
                    "streetAddress",
                    "The full street address component, which may include "
                    "house number, street name, P.O. box, and multi-line extended street "
                    "address information.",
                ),
                _str("locality", "The city or locality component."),
                _str("region", "The state or region component."),
                _str("postalCode", "The zip code or postal code component."),
                _str("country", "The country name component."),
                _str(
                    "type",
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    canonical_values=("work", "home", "other"),
                ),
                # §4.1.2 lists "primary" for addresses; the §8.7.1 JSON omits it.
                _bool(
                    "primary",
                    "A Boolean value indicating the 'primary' or preferred "
                    "address.  The primary attribute value 'true' MUST appear no more "
                    "than once.",
                ),
            ),
        ),
        Attribute(
            "groups",
            "complex",
            multi_valued=True,
            mutability="readOnly",
            description="A list of groups to which the user belongs, either through direct "
            "membership, through nested groups, or dynamically calculated.",
            sub_attributes=(
                _str("value", "The identifier of the User's group.", mutability="readOnly"),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User", "Group"),
                    mutability="readOnly",
                    description="The URI of the corresponding 'Group' resource to which the "
                    "user belongs.",
                ),
                _str(
                    "display",
                    "A human-readable name, primarily used for display purposes.  READ-ONLY.",
                    mutability="readOnly",
                ),
                _str(
                    "type",
                    "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
                    canonical_values=("direct", "indirect"),
                    mutability="readOnly",
                ),
            ),
        ),
        _multi(
            "entitlements",
            "A list of entitlements for the User that represent a thing the User has.",
            value=_str("value", "The value of an entitlement."),
        ),
        _multi(
            "roles",
            "A list of roles for the User that collectively represent who the "
            "User is, e.g., 'Student', 'Faculty'.",
            value=_str("value", "The value of a role."),
        ),
        _multi(
            "x509Certificates",
            "A list of certificates issued to the User.",
            value=Attribute("value", "binary", description="The value of an X.509 certificate."),
        ),
    ),
)

# --------------------------------------------------------------------------- Enterprise (§4.3)

ENTERPRISE_USER = Schema(
    ENTERPRISE_USER_SCHEMA_ID,
    "EnterpriseUser",
    "Enterprise User",
    (
        _str(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person, "
            "typically based on order of hire or association with an organization.",
        ),
        _str("costCenter", "Identifies the name of a cost center."),
        _str("organization", "Identifies the name of an organization."),
        _str("division", "Identifies the name of a division."),
        _str("department", "Identifies the name of a department."),
        Attribute(
            "manager",
            "complex",
            description="The User's manager.  A complex type that optionally allows service "
            "providers to represent organizational hierarchy by referencing the 'id' "
            "attribute of another User.",
            sub_attributes=(
                _str(
                    "value",
                    "The id of the SCIM resource representing the User's manager.  REQUIRED.",
                ),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User",),
                    description="The URI of the SCIM resource representing the User's "
                    "manager.  REQUIRED.",
                ),
                _str(
                    "displayName",
                    "The displayName of the User's manager.  OPTIONAL and READ-ONLY.",
                    mutability="readOnly",
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------- Workteam extension

WORKTEAM_USER = Schema(
    WORKTEAM_USER_SCHEMA_ID,
    "WorkteamUser",
    "Workteam provisioning state of a User (read-only, computed by the service)",
    (
        _str(
            "managerState",
            "Resolution state of the enterprise manager reference: 'none' (no manager), "
            "'pending' (the referenced user does not exist yet), 'resolved', or 'invalid' "
            "(e.g. a cycle).",
            mutability="readOnly",
            canonical_values=("none", "pending", "resolved", "invalid"),
        ),
        _str(
            "managerStateReason",
            "Why the manager reference is pending or invalid.",
            mutability="readOnly",
        ),
        _str(
            "licenseState",
            "Seat license state: 'none' (free plan), 'licensed' or 'unlicensed' (no seat left).",
            mutability="readOnly",
            canonical_values=("none", "licensed", "unlicensed"),
        ),
    ),
)

# --------------------------------------------------------------------------- Group (§4.2)

GROUP = Schema(
    GROUP_SCHEMA_ID,
    "Group",
    "Group",
    (
        # §4.2: "displayName ... REQUIRED." (the §8.7.1 JSON says required false)
        _str("displayName", "A human-readable name for the Group.  REQUIRED.", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                _str("value", "Identifier of the member of this Group.", mutability="immutable"),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User", "Group"),
                    mutability="immutable",
                    description="The URI corresponding to a SCIM resource that is a member "
                    "of this Group.",
                ),
                _str(
                    "type",
                    "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                    canonical_values=("User", "Group"),
                    mutability="immutable",
                ),
                # Not in §8.7.1; sent by Okta and shown in §8.4. Immutable like its siblings.
                _str(
                    "display",
                    "A human-readable name of the member, primarily used for display purposes.",
                    mutability="immutable",
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------- resource types

USER_TYPE = ResourceType(
    "User",
    "/Users",
    USER,
    ((ENTERPRISE_USER, False), (WORKTEAM_USER, False)),
    description="User Account",
)
GROUP_TYPE = ResourceType("Group", "/Groups", GROUP, (), description="Group")

RESOURCE_TYPES: dict[str, ResourceType] = {"User": USER_TYPE, "Group": GROUP_TYPE}
ALL_SCHEMAS: list[Schema] = [USER, GROUP, ENTERPRISE_USER, WORKTEAM_USER]


# --------------------------------------------------------------------------- path resolution


@dataclass(frozen=True)
class AttrPath:
    """A resolved attribute path (RFC 7644 §3.10 ``attrPath``), all names canonical.

    ``schema_id``: URN of the schema the attribute lives in (common attributes ``id``,
    ``externalId``, ``meta``: the resource type's core schema). ``attribute``: top-level
    attribute name; ``sub_attribute``: sub-attribute name or None. ``parent``: the top-level
    attribute's definition; ``definition``: the leaf's (== parent when no sub-attribute).
    ``extension``: True when ``schema_id`` is an extension of the resource type (the value then
    lives under ``resource[schema_id]`` in a canonical resource dict). Equality and hash use the
    names only (schema_id, attribute, sub_attribute, extension), not the definitions.
    """

    schema_id: str
    attribute: str
    sub_attribute: str | None
    definition: Attribute = field(compare=False, repr=False)
    parent: Attribute = field(compare=False, repr=False)
    extension: bool = False

    def __repr__(self) -> str:
        return f"AttrPath({str(self)!r})"

    @property
    def dotted(self) -> str:
        """``attribute`` or ``attribute.sub`` without the schema URN."""
        return f"{self.attribute}.{self.sub_attribute}" if self.sub_attribute else self.attribute

    def __str__(self) -> str:
        """The canonical path text: URN-qualified for extension attributes."""
        return f"{self.schema_id}:{self.dotted}" if self.extension else self.dotted

    def with_sub(self, sub_name: str) -> AttrPath:
        """The path of sub-attribute ``sub_name`` of this (complex, sub-less) path."""
        if self.sub_attribute is not None or not self.parent.is_complex:
            raise InvalidPath(f"'{self}' has no sub-attribute '{sub_name}'")
        sub = self.parent.sub(sub_name)
        if sub is None:
            raise InvalidPath(f"Unknown sub-attribute '{sub_name}' of '{self}'")
        return AttrPath(self.schema_id, self.attribute, sub.name, sub, self.parent, self.extension)


def resolve_schema(rtype: ResourceType, urn: str) -> Schema | None:
    """The schema (core or extension) of ``rtype`` whose id equals ``urn`` case-insensitively."""
    low = urn.lower()
    for schema in rtype.schemas:
        if schema.id.lower() == low:
            return schema
    return None


def _split_urn(rtype: ResourceType, path: str) -> tuple[Schema | None, str]:
    """Split ``urn:...:Schema:attr.sub`` into (schema, "attr.sub"); (None, path) if no URN."""
    low = path.lower()
    if not low.startswith("urn:"):
        return None, path
    best: Schema | None = None
    for schema in rtype.schemas:
        sid = schema.id.lower()
        if low.startswith(sid + ":") and (best is None or len(sid) > len(best.id)):
            best = schema
    if best is None:
        raise InvalidPath(f"Unknown schema in attribute path '{path}'")
    return best, path[len(best.id) + 1 :]


def resolve_path(rtype: ResourceType, path: str) -> AttrPath:
    """Resolve ``attr``, ``attr.sub`` or ``urn:...:attr[.sub]`` against ``rtype``.

    Case-insensitive. A bare name is looked up in the core schema, then the common attributes
    (``id``, ``externalId``, ``meta``) and ``schemas``, then the extensions (only if exactly one
    extension has it). Raises ``InvalidPath`` naming the path when unknown. Value filters
    (``[...]``) are not handled here: see ``web.scim.filter``.
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidPath("Empty attribute path")
    text = path.strip()
    schema, rest = _split_urn(rtype, text)
    parts = rest.split(".")
    if len(parts) > 2 or not all(parts):
        raise InvalidPath(f"Invalid attribute path '{path}'")
    name = parts[0]
    top: Attribute | None = None
    owner: Schema | None = None
    if schema is not None:
        top = schema.attr(name)
        owner = schema
        if top is None and schema is rtype.schema:
            top = _COMMON_BY_LOWER.get(name.lower())
    else:
        top = rtype.schema.attr(name)
        owner = rtype.schema
        if top is None:
            top = _COMMON_BY_LOWER.get(name.lower())
        if top is None:
            found = [(s, a) for s in rtype.extension_schemas if (a := s.attr(name)) is not None]
            if len(found) > 1:
                raise InvalidPath(
                    f"Ambiguous attribute path '{path}': qualify it with a schema URN"
                )
            if found:
                owner, top = found[0]
    if top is None or owner is None:
        raise InvalidPath(f"Unknown attribute '{path}'")
    is_ext = owner is not rtype.schema
    if len(parts) == 1:
        return AttrPath(owner.id, top.name, None, top, top, is_ext)
    if not top.is_complex:
        raise InvalidPath(f"Attribute '{top.name}' has no sub-attributes (path '{path}')")
    sub = top.sub(parts[1])
    if sub is None:
        raise InvalidPath(f"Unknown sub-attribute '{parts[1]}' of '{top.name}' (path '{path}')")
    return AttrPath(owner.id, top.name, sub.name, sub, top, is_ext)


# --------------------------------------------------------------------------- canonicalize


def _canon_value(attr: Attribute, value: Any) -> Any:
    if not attr.is_complex:
        return value
    if isinstance(value, dict):
        return _canon_complex(attr, value)
    if isinstance(value, list):
        return [_canon_complex(attr, v) if isinstance(v, dict) else v for v in value]
    return value


def _canon_complex(attr: Attribute, value: dict) -> dict:
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        out[sub.name if sub else key] = sub_value
    return out


def _canon_attrs(schema: Schema, data: dict, *, common: bool) -> dict:
    out: dict[str, Any] = {}
    for key, value in data.items():
        attr = schema.attr(key) if isinstance(key, str) else None
        if attr is None and common and isinstance(key, str):
            attr = _COMMON_BY_LOWER.get(key.lower())
        if attr is None:
            out[key] = value
        else:
            out[attr.name] = _canon_value(attr, value)
    return out


def canonicalize(rtype: ResourceType, data: dict) -> dict:
    """A copy of ``data`` with every known key in canonical case, recursively.

    Top-level core and common attributes, ``schemas``, extension URN keys (matched
    case-insensitively; if two keys differ only in case their objects are merged, later keys
    winning), the attributes inside an extension object, and the sub-attributes of complex and
    multi-valued complex attributes. Values are not validated or converted.

    Unknown keys (and keys of unknown nested objects) are kept as sent: the caller decides
    whether to ignore them (e.g. Entra's top-level ``"department": null``) or reject them.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            out[key] = value
            continue
        if key.lower() == "schemas":
            out["schemas"] = value
            continue
        ext = resolve_schema(rtype, key) if key.lower().startswith("urn:") else None
        if ext is not None and ext is not rtype.schema:
            canon = _canon_attrs(ext, value, common=False) if isinstance(value, dict) else value
            prev = out.get(ext.id)
            if isinstance(prev, dict) and isinstance(canon, dict):
                canon = {**prev, **canon}
            out[ext.id] = canon
            continue
        attr = rtype.schema.attr(key) or _COMMON_BY_LOWER.get(key.lower())
        if attr is None:
            out[key] = value
        else:
            out[attr.name] = _canon_value(attr, value)
    return out
