"""POST /.search at the Base URL (RFC 7644 §3.4.3): one ListResponse over every resource type.

Each type answers the part of the query it understands: a filter or sort naming attributes a
type does not have leaves that type out (a filter no type understands is invalidFilter), and
``attributes``/``excludedAttributes`` apply per type to the names that type has. Results are
Users, then Groups, each in its own stable order; ``startIndex``/``count`` page across both.
Cursor pagination is per resource type, so it is not offered here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from web.scim import definitions as d
from web.scim import filter as scim_filter
from web.scim.auth import AuthenticatedOrg
from web.scim.errors import InvalidFilter, InvalidPath, InvalidValue, ScimError
from web.scim.groups import query_groups
from web.scim.listing import LIST_RESPONSE, _int_param, query_users, search_params

Runner = Callable[[Session, AuthenticatedOrg, Mapping[str, Any]], dict]
TYPES: list[tuple[d.ResourceType, Runner]] = [
    (d.USER_TYPE, query_users),
    (d.GROUP_TYPE, query_groups),
]


def _understands(rtype: d.ResourceType, params: Mapping[str, Any]) -> bool:
    filter_text = params.get("filter")
    try:
        if filter_text:
            scim_filter.parse(str(filter_text), rtype)
        if params.get("sortBy"):
            d.resolve_path(rtype, str(params["sortBy"]))
    except (InvalidFilter, InvalidPath):
        return False
    return True


def _known(raw: Any, rtype: d.ResourceType) -> list[str]:
    items = raw if isinstance(raw, list) else str(raw or "").split(",")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            continue
        try:
            if d.resolve_schema(rtype, item.strip()) is None:
                d.resolve_path(rtype, item.strip())
            out.append(item.strip())
        except InvalidPath:
            continue
    return out


def search_root(session: Session, org: AuthenticatedOrg, body: dict) -> dict:
    params = search_params(body)
    if params.get("cursor") is not None:
        raise InvalidValue("Cursor pagination is offered per resource type, not at the root")
    types = [(rtype, run) for rtype, run in TYPES if _understands(rtype, params)]
    if not types:
        raise InvalidFilter("No resource type has every attribute the filter or sortBy names")
    start = max(_int_param(params.get("startIndex"), "startIndex") or 1, 1)
    count = _int_param(params.get("count"), "count")
    config = current_app.config
    count = config["SCIM_DEFAULT_PAGE_SIZE"] if count is None else count
    count = min(max(count, 0), config["SCIM_MAX_PAGE_SIZE"])
    total, skip = 0, start - 1
    resources: list[dict] = []
    for rtype, run in types:
        per_type = {
            **params,
            "attributes": _known(params.get("attributes"), rtype) or None,
            "excludedAttributes": _known(params.get("excludedAttributes"), rtype) or None,
            "startIndex": None,
            "count": 0,
        }
        try:
            found = run(session, org, per_type)["totalResults"]
        except ScimError:
            continue
        total += found
        if skip >= found:
            skip -= found
            continue
        wanted = count - len(resources)
        if wanted > 0:
            page = run(session, org, {**per_type, "startIndex": skip + 1, "count": wanted})
            resources.extend(page["Resources"])
        skip = 0
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start,
        "Resources": resources,
    }
