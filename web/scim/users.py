"""The User resource: turn request bodies into stored attributes, and rows into responses."""

from __future__ import annotations

from typing import Any

from flask import current_app

from models.passwords import hash_password
from models.store import StoredUser
from web.scim import definitions as d
from web.scim.errors import InvalidValue
from web.scim.schemas import load_resource

USER = d.USER_TYPE
ENTERPRISE = d.ENTERPRISE_USER_SCHEMA_ID
WORKTEAM = d.WORKTEAM_USER_SCHEMA_ID


def _check_schemas(body: dict, rtype: d.ResourceType) -> None:
    schemas = next((v for k, v in body.items() if k.lower() == "schemas"), None)
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise InvalidValue(f"'schemas' must be a list of schema URNs including {rtype.schema.id}")
    # Extra URNs (Entra's Microsoft group schema, its malformed enterprise URN) are tolerated.
    if rtype.schema.id.lower() not in {s.lower() for s in schemas}:
        raise InvalidValue(f"'schemas' must include {rtype.schema.id}")


def check_lengths(value: Any, limit: int, path: str = "") -> None:
    """Reject any string longer than the configured attribute value limit."""
    if isinstance(value, str):
        if len(value) > limit:
            raise InvalidValue(f"'{path}' is longer than {limit} characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_lengths(item, limit, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_lengths(item, limit, f"{path}[{index}]")


def validate_user(data: dict) -> tuple[dict, str | None]:
    """Validate a canonical user dict; return (attributes to store, password or None)."""
    attrs = load_resource(USER, data)
    check_lengths(attrs, current_app.config["SCIM_MAX_VALUE_LENGTH"])
    password = attrs.pop("password", None)
    attrs.pop("id", None)
    attrs.pop("meta", None)
    _unique_primary(attrs)
    return attrs, password


def parse_user_body(body: dict) -> tuple[dict, str | None]:
    """A POST/PUT body -> (attributes to store, password or None)."""
    _check_schemas(body, USER)
    return validate_user(d.canonicalize(USER, body))


def _unique_primary(attrs: dict) -> None:
    for name, value in attrs.items():
        if isinstance(value, list) and sum(
            1 for e in value if isinstance(e, dict) and e.get("primary") is True
        ) > 1:
            raise InvalidValue(f"'{name}' has more than one primary value")


def password_hash_for(password: str | None) -> str | None:
    if password is None:
        return None
    config = current_app.config
    return hash_password(
        password,
        memory_kib=config["PASSWORD_HASH_MEMORY_KIB"],
        time_cost=config["PASSWORD_HASH_TIME_COST"],
    )


def base_url(org_id: object) -> str:
    return f"{current_app.config['PUBLIC_URL']}/scim/v2/{org_id}"


def location(user: StoredUser) -> str:
    return f"{base_url(user.org_id)}/Users/{user.id}"


def _ts(value: Any) -> str:
    """ISO 8601 with a Z; a page's rows carry it already written (listing._iso_utc)."""
    if type(value) is str:
        return value
    return value.isoformat().replace("+00:00", "Z")


# A resolved manager as rendered: its id and display name (displayName, else userName).
ManagerRef = tuple[Any, str | None]


def render_user(
    user: StoredUser,
    manager: ManagerRef | None,
    groups: list[tuple[Any, str]],
    base: str | None = None,
) -> dict:
    """The user as a SCIM resource. ``manager`` (the resolved manager) adds ``manager.$ref``
    and ``manager.displayName``. ``groups`` (the user's direct groups as
    ``(id, displayName)``, read with the row: ``memberships.groups_column``) fills the
    read-only ``groups`` attribute. ``base``: ``base_url(user.org_id)``, when the caller
    renders many users of one organization (two proxy reads per user otherwise)."""
    attrs = dict(user.attrs)
    schemas = [d.USER_SCHEMA_ID]
    user_id = str(user.id)
    out: dict[str, Any] = {"schemas": schemas, "id": user_id}
    enterprise = attrs.pop(ENTERPRISE, None)
    out.update(attrs)
    if base is None:
        base = base_url(user.org_id)
    if groups:
        out["groups"] = [
            {"value": str(gid), "$ref": f"{base}/Groups/{gid}", "display": name, "type": "direct"}
            for gid, name in groups
        ]
    if enterprise is not None:
        enterprise = dict(enterprise)
        if manager is not None and "manager" in enterprise:
            manager_id, manager_name = manager
            enterprise["manager"] = {
                **enterprise["manager"],
                "$ref": f"{base}/Users/{manager_id}",
                **({"displayName": manager_name} if manager_name else {}),
            }
        out[ENTERPRISE] = enterprise
        schemas.append(ENTERPRISE)
    workteam: dict[str, Any] = {
        "managerState": user.manager_state,
        "licenseState": user.license_state,
    }
    if user.manager_reason:
        workteam["managerStateReason"] = user.manager_reason
    out[WORKTEAM] = workteam
    schemas.append(WORKTEAM)
    out["meta"] = {
        "resourceType": "User",
        "created": _ts(user.created),
        "lastModified": _ts(user.last_modified),
        "location": f"{base}/Users/{user_id}",
        "version": f'W/"{user.version}"',
    }
    return out


def patch_target(user: StoredUser) -> dict:
    """The canonical resource a PATCH operates on: the stored attributes as sent."""
    return dict(user.attrs)
