"""SCIM /Groups endpoints (RFC 7644 §3.2-3.6) on the shared SCIM blueprint: thin.

Writers lock the group row (SELECT ... FOR UPDATE) for the length of their short transaction,
so membership changes to one group are serialised (no lost update, no retry loop) and
``If-Match`` is checked against the locked version.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, g, request

from models import group_store, memberships
from models.errors import DuplicateError, NotFoundError, VersionConflict
from models.group import Group
from web.database import session
from web.scim import definitions as d
from web.scim import groups
from web.scim.errors import InvalidValue, Mutability, NotFound, PreconditionFailed, Uniqueness
from web.scim.http import check_if_match, if_none_match_hits, json_body, scim_response
from web.scim.listing import project, search_params
from web.scim.views import bp

log = logging.getLogger("workteam.scim.groups")

TRUNCATED_HEADER = "Workteam-Members-Truncated"


def _get(group_id: str, *, for_update: bool = False) -> Group:
    try:
        group = group_store.get_group(session(), g.org.id, group_id, for_update=for_update)
    except NotFoundError:
        raise NotFound(f"Group {group_id} not found") from None
    g.resource_id = str(group.id)
    return group


def _response(group: Group, status: int = 200, *, members_by_default: bool = True) -> Response:
    """The group, projected by the request's ``attributes``/``excludedAttributes``. Members are
    read only when they will be returned, and at most ``SCIM_GROUP_MEMBERS_MAX`` of them."""
    attributes, excluded = groups.projection(request.args)
    wanted = groups.wants_members(attributes, excluded)
    if not members_by_default and not attributes:
        wanted = False
    truncated = False
    members = None
    if wanted:
        cap = current_app.config["SCIM_GROUP_MEMBERS_MAX"]
        members = memberships.members_of(session(), [group.id], cap + 1)[group.id]
        if len(members) > cap:
            truncated = True
            members = members[:cap]
            log.warning("group members truncated", extra={"group_id": str(group.id)})
    body = project(groups.render_group(group, members), d.GROUP_TYPE, attributes, excluded)
    response = scim_response(
        body,
        status,
        version=group.version,
        location=groups.location(group) if status == 201 else None,
    )
    if truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response


def _commit() -> None:
    session().commit()


def _member_error(exc: memberships.ForeignMember) -> InvalidValue:
    return InvalidValue(f"members: {exc}")


@bp.post("/Groups")
def create_group() -> Response:
    attrs, members = groups.parse_group_body(json_body())
    try:
        result = group_store.create_group(session(), g.org.id, attrs, members or [])
    except DuplicateError as exc:
        raise Uniqueness(str(exc)) from None
    except memberships.ForeignMember as exc:
        raise _member_error(exc) from None
    g.resource_id = str(result.group.id)
    _commit()
    return _response(result.group, 201)


@bp.get("/Groups/<group_id>")
def get_group(group_id: str) -> Response:
    group = _get(group_id)
    if if_none_match_hits(group.version):
        return scim_response(None, 304, version=group.version)
    return _response(group)


@bp.get("/Groups")
def list_groups() -> Response:
    return scim_response(groups.query_groups(session(), g.org, request.args))


@bp.post("/Groups/.search")
def search_groups() -> Response:
    params = search_params(json_body())
    return scim_response(groups.query_groups(session(), g.org, params))


def _write(group: Group, **changes: object) -> group_store.GroupWrite:
    asserted = check_if_match(group.version)
    try:
        return group_store.update_group(
            session(),
            group,
            expected_version=asserted,
            **changes,  # type: ignore[arg-type]
        )
    except DuplicateError as exc:
        raise Uniqueness(str(exc)) from None
    except memberships.ForeignMember as exc:
        raise _member_error(exc) from None
    except VersionConflict:
        raise PreconditionFailed(f"Group {group.id} changed since the asserted version") from None


def _check_id_matches(body: dict, group_id: str) -> None:
    sent = next((v for k, v in body.items() if isinstance(k, str) and k.lower() == "id"), None)
    if sent is not None and str(sent).lower() != group_id.lower():
        raise Mutability(f"id '{sent}' in the body does not match the URL's '{group_id}'")


@bp.put("/Groups/<group_id>")
def replace_group(group_id: str) -> Response:
    """PUT replaces displayName/externalId; ``members`` replaces the member list when present.
    A PUT without ``members`` leaves them as they are (RFC 7644 §3.5.1 lets the server treat
    an omitted attribute as not asserted): clearing a large team because a client left out a
    list it never reads is worse than keeping it; ``"members": []`` clears."""
    body = json_body()
    attrs, members = groups.parse_group_body(body)
    _check_id_matches(body, group_id)
    group = _get(group_id, for_update=True)
    result = _write(group, attrs=attrs, members_replaced=members)
    _commit()
    return _response(result.group)


@bp.patch("/Groups/<group_id>")
def patch_group(group_id: str) -> Response:
    """PATCH answers 200 with the group, without members unless ``attributes`` asks for them:
    a large member list is never sent back unasked (Entra and Okta never read it)."""
    from web.scim.patch import apply_patch

    body = json_body()
    group = _get(group_id, for_update=True)
    resource, changes = apply_patch(
        dict(group.attrs),
        body,
        d.GROUP_TYPE,
        max_operations=current_app.config["SCIM_MAX_PATCH_OPERATIONS"],
    )
    attrs = groups.validate_group(resource) if resource != group.attrs else None
    limit = current_app.config["SCIM_MAX_VALUE_LENGTH"]
    for value in (
        *changes.members_added,
        *changes.members_removed,
        *(changes.members_replaced or ()),
    ):
        if len(value) > limit:
            raise InvalidValue(f"members: a value is longer than {limit} characters")
    result = _write(
        group,
        attrs=attrs,
        members_added=changes.members_added,
        members_removed=changes.members_removed,
        members_replaced=changes.members_replaced,
    )
    _commit()
    return _response(result.group, members_by_default=False)


@bp.delete("/Groups/<group_id>")
def delete_group(group_id: str) -> Response:
    group = _get(group_id, for_update=True)
    check_if_match(group.version)
    group_store.delete_group(session(), group)
    _commit()
    return scim_response(None, 204)
