"""The Group resource: request bodies -> stored attributes and member values; rows -> responses;
and group listing (same filter, sort, projection and index pagination as Users).

Members are not part of the stored attributes: they live in ``memberships`` rows and are
rendered from a bounded page of them. A single GET returns at most ``SCIM_GROUP_MEMBERS_MAX``
members (default 10,000), a list response at most ``SCIM_LIST_MEMBERS_MAX`` per group
(default 1,000); a truncated list is marked by the ``Workteam-Members-Truncated`` response
header (single GET). RFC 7644 has no member paging: a client pages through the users of a
group with ``GET /Users?filter=groups.value eq "<group id>"&startIndex=..&count=..``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from models import memberships
from models.group import Group
from models.memberships import Member
from web.scim import definitions as d
from web.scim.auth import AuthenticatedOrg
from web.scim.errors import InvalidValue
from web.scim.listing import Query, parse_paths, project, run_query
from web.scim.schemas import load_resource
from web.scim.users import base_url, check_lengths

GROUP = d.GROUP_TYPE


def _get_ci(data: dict, key: str) -> Any:
    return next((v for k, v in data.items() if isinstance(k, str) and k.lower() == key), None)


def _check_schemas(body: dict) -> None:
    schemas = _get_ci(body, "schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise InvalidValue(f"'schemas' must be a list of schema URNs including {d.GROUP_SCHEMA_ID}")
    # Extra URNs (Entra's Microsoft ADSCIM group schema) are tolerated and not stored.
    if d.GROUP_SCHEMA_ID.lower() not in {s.lower() for s in schemas}:
        raise InvalidValue(f"'schemas' must include {d.GROUP_SCHEMA_ID}")


def member_values(raw: Any, label: str = "members") -> list[str]:
    """The member ids of a ``members`` value: a list of ``{"value": id, ...}`` objects
    (``display``, ``$ref`` and ``type`` are server-computed and ignored)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidValue(f"'{label}' must be a list of objects with a 'value'")
    limit = current_app.config["SCIM_MAX_VALUE_LENGTH"]
    out = []
    for index, item in enumerate(raw):
        value = _get_ci(item, "value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise InvalidValue(f"'{label}[{index}]' must be an object with a non-empty 'value'")
        if len(value) > limit:
            raise InvalidValue(f"'{label}[{index}].value' is longer than {limit} characters")
        out.append(value.strip())
    return out


def validate_group(data: dict) -> dict:
    """Validate a canonical group dict without members; return the attributes to store."""
    data = {k: v for k, v in data.items() if k != "members"}
    attrs = load_resource(GROUP, data)
    attrs.pop("id", None)
    attrs.pop("meta", None)
    attrs.pop("members", None)
    if not str(attrs.get("displayName", "")).strip():
        raise InvalidValue("'displayName' is required")
    check_lengths(attrs, current_app.config["SCIM_MAX_VALUE_LENGTH"])
    return attrs


def parse_group_body(body: dict) -> tuple[dict, list[str] | None]:
    """A POST/PUT body -> (attributes to store, member values or None when absent)."""
    _check_schemas(body)
    canon = d.canonicalize(GROUP, body)
    members = member_values(canon["members"]) if "members" in canon else None
    return validate_group(canon), members


# ------------------------------------------------------------------------------ rendering


def location(group: Group) -> str:
    return f"{base_url(group.org_id)}/Groups/{group.id}"


def _ts(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def render_member(member: Member, base: str) -> dict:
    out: dict[str, Any] = {"value": member.value}
    if member.user_id is not None:
        out["$ref"] = f"{base}/Users/{member.user_id}"
        out["type"] = "User"
    elif member.member_group_id is not None:
        out["$ref"] = f"{base}/Groups/{member.member_group_id}"
        out["type"] = "Group"
    if member.display:
        out["display"] = member.display
    return out


def render_group(group: Group, members: Iterable[Member] | None = None) -> dict:
    """The group as a SCIM resource; ``members`` None leaves the attribute out."""
    out: dict[str, Any] = {"schemas": [d.GROUP_SCHEMA_ID], "id": str(group.id)}
    out.update(group.attrs)
    if members is not None:
        base = base_url(group.org_id)
        out["members"] = [render_member(m, base) for m in members]
    out["meta"] = {
        "resourceType": "Group",
        "created": _ts(group.created),
        "lastModified": _ts(group.last_modified),
        "location": location(group),
        "version": f'W/"{group.version}"',
    }
    return out


def wants_members(attributes: list[d.AttrPath], excluded: list[d.AttrPath]) -> bool:
    """Would ``project`` keep ``members``? Decides whether member rows are read at all."""
    if attributes:
        return any(p.attribute == "members" for p in attributes)
    return not any(p.attribute == "members" and p.sub_attribute is None for p in excluded)


def projection(params: Mapping[str, Any]) -> tuple[list[d.AttrPath], list[d.AttrPath]]:
    return (
        parse_paths(params.get("attributes"), GROUP, "attributes"),
        parse_paths(params.get("excludedAttributes"), GROUP, "excludedAttributes"),
    )


# -------------------------------------------------------------------------------- listing


def query_groups(session: Session, org: AuthenticatedOrg, params: Mapping[str, Any]) -> dict:
    """One list/search request over the organization's groups: the Users engine
    (``listing.run_query``: filter, sort, index and cursor pagination, projection); members are
    read, one bounded query per page, only when the projection returns them."""
    sort_by = params.get("sortBy")
    if isinstance(sort_by, str) and sort_by.strip().lower().startswith("members"):
        raise InvalidValue("'sortBy': groups cannot be sorted by members")
    cap = current_app.config["SCIM_LIST_MEMBERS_MAX"]

    def render(rows: Sequence[Group], query: Query, _extras: Sequence[tuple]) -> list[dict]:
        members: dict[Any, list[Member]] | None = None
        if rows and wants_members(query.attributes, query.excluded):
            members = memberships.members_of(session, [g.id for g in rows], cap)
        return [
            project(
                render_group(g, members.get(g.id) if members is not None else None),
                GROUP,
                query.attributes,
                query.excluded,
            )
            for g in rows
        ]

    return run_query(session, org, params, GROUP, Group, render)
