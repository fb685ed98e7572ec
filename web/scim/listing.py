"""Listing and searching (RFC 7644 §3.4.2, §3.4.3) and attribute projection (§3.4.2.5)."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import (
    BindParameter,
    String,
    Text,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import store
from models.db import driver_rows
from models.memberships import groups_column, manager_column
from models.user import User
from web.scim import cursor as cursors
from web.scim import definitions as d
from web.scim import filter as scim_filter
from web.scim import positions
from web.scim.auth import AuthenticatedOrg
from web.scim.errors import InvalidCount, InvalidPath, InvalidValue
from web.scim.query import compile_filter, sort_key
from web.scim.users import base_url, render_user

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

Key = tuple[str, str, str | None]


# ----------------------------------------------------------------------------- projection


def parse_paths(raw: Any, rtype: d.ResourceType, name: str) -> list[d.AttrPath]:
    """``attributes``/``excludedAttributes``: comma-separated (query) or a list (.search)."""
    if raw in (None, ""):
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out: list[d.AttrPath] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidValue(f"'{name}' must list attribute names")
        item = item.strip()
        if not item:
            continue
        schema = d.resolve_schema(rtype, item)
        try:
            if schema is not None:  # a whole extension: every attribute of it
                out.extend(
                    d.resolve_path(rtype, f"{schema.id}:{a.name}") for a in schema.attributes
                )
            else:
                out.append(d.resolve_path(rtype, item))
        except InvalidPath as exc:
            raise InvalidValue(f"'{name}': {exc.detail}") from None
    return out


_SKIP = object()


def _keys(paths: Iterable[d.AttrPath]) -> set[Key]:
    return {(p.schema_id, p.attribute, p.sub_attribute) for p in paths}


def _pick(value: Any, subs: set[str], keep: bool) -> Any:
    def one(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        return {k: v for k, v in item.items() if (k in subs) == keep}

    if isinstance(value, list):
        return [one(v) for v in value]
    return one(value)


def _select(
    schema_id: str, attr: d.Attribute | None, value: Any, inc: set[Key], exc: set[Key]
) -> Any:
    if attr is None:
        return _SKIP if inc else value
    if attr.returned == "never":
        return _SKIP
    if attr.returned == "always":
        return value
    top = (schema_id, attr.name, None)
    if inc:
        if top in inc:
            return value
        subs = {s for (sch, a, s) in inc if sch == schema_id and a == attr.name and s}
        return _pick(value, subs, keep=True) if subs else _SKIP
    if attr.returned == "request" or top in exc:
        return _SKIP
    subs = {s for (sch, a, s) in exc if sch == schema_id and a == attr.name and s}
    return _pick(value, subs, keep=False) if subs else value


def project(
    resource: dict,
    rtype: d.ResourceType,
    attributes: Iterable[d.AttrPath] = (),
    excluded: Iterable[d.AttrPath] = (),
) -> dict:
    """The resource as RFC 7644 §3.4.2.5 and RFC 7643 ``returned`` say it is returned."""
    inc, exc = _keys(attributes), _keys(excluded)
    if not inc and not exc:
        return _project_default(resource, rtype)
    return _project_asked(resource, rtype, inc, exc)


def _project_asked(resource: dict, rtype: d.ResourceType, inc: set[Key], exc: set[Key]) -> dict:
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if key == "schemas":
            out[key] = value
            continue
        ext = d.resolve_schema(rtype, key) if key.startswith("urn:") else None
        if ext is not None and ext is not rtype.schema:
            picked = {}
            for name, item in value.items():
                chosen = _select(ext.id, ext.attr(name), item, inc, exc)
                if chosen is not _SKIP:
                    picked[name] = chosen
            if picked:
                out[key] = picked
            continue
        attr = rtype.schema.attr(key) or next(
            (a for a in d.COMMON_ATTRIBUTES if a.name == key), None
        )
        chosen = _select(rtype.schema.id, attr, value, inc, exc)
        if chosen is not _SKIP:
            out[key] = chosen
    return out


# Without attributes/excludedAttributes (every page of an import, every lookup) projection
# only drops what is returned "never" or on "request": name sets per resource type, so a page
# of 100 users does not resolve every attribute of every user (test_projection.py checks this
# path against the general one).
@dataclass(frozen=True)
class _Hidden:
    core: frozenset[str]  # lowercase names of the core attributes to drop
    extensions: dict[str, frozenset[str]]  # lowercase extension URN -> lowercase names to drop
    in_names: re.Pattern[str] | None  # finds a core name in "\0"-joined lowercase names
    in_extensions: bool  # whether any extension drops anything


_HIDDEN: dict[str, _Hidden] = {}


def _hidden(rtype: d.ResourceType) -> _Hidden:
    found = _HIDDEN.get(rtype.name)
    if found is None:
        def names(attrs: Iterable[d.Attribute]) -> frozenset[str]:
            return frozenset(a.name.lower() for a in attrs if a.returned in ("never", "request"))

        core = names(rtype.schema.attributes)
        extensions = {s.id.lower(): names(s.attributes) for s in rtype.extension_schemas}
        alternatives = "|".join(map(re.escape, core))
        found = _HIDDEN[rtype.name] = _Hidden(
            core, extensions, re.compile(f"\0(?:{alternatives})\0") if core else None,
            any(extensions.values()),
        )
    return found


def _project_default(resource: dict, rtype: d.ResourceType) -> dict:
    hidden_by = _hidden(rtype)
    # Nothing to drop (every user of a page: a password is never stored), no empty extension
    # object either: the resource as it is, found by a few passes in C over its names and
    # values; rebuilding it key by key below was 12 % of an import page's instructions.
    if not hidden_by.in_extensions and {} not in resource.values():
        names = "\0" + "\0".join(resource).lower() + "\0"
        if hidden_by.in_names is None or hidden_by.in_names.search(names) is None:
            return resource
    core, extensions = hidden_by.core, hidden_by.extensions
    out: dict[str, Any] = {}
    for key, value in resource.items():
        hidden = extensions.get(key.lower()) if key.startswith("urn:") else None
        if hidden is None:
            if key.lower() not in core:
                out[key] = value
            continue
        picked = {k: v for k, v in value.items() if k.lower() not in hidden}
        if picked:
            out[key] = picked
    return out


# ------------------------------------------------------------------------------- listing


def _int_param(raw: Any, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise InvalidValue(f"'{name}' must be an integer")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidValue(f"'{name}' must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Query:
    """A list/search request, parsed and validated."""

    where: Any
    order: list[Any]
    sorted: bool
    start_index: int
    count: int
    cursor: str | None
    fingerprint: str
    attributes: list[d.AttrPath]
    excluded: list[d.AttrPath]


def parse_query(org: AuthenticatedOrg, params: Mapping[str, Any], rtype: d.ResourceType) -> Query:
    """Validate the RFC 7644 §3.4.2 / RFC 9865 parameters of a list or search request."""
    config = current_app.config
    where = None
    filter_text = params.get("filter")
    if filter_text not in (None, ""):
        if not isinstance(filter_text, str):
            raise InvalidValue("'filter' must be a string")
        node = scim_filter.parse(filter_text, rtype, max_length=config["SCIM_MAX_FILTER_LENGTH"])
        where = compile_filter(node, rtype)
    order: list[Any] = []
    sort_by, sort_order = params.get("sortBy"), params.get("sortOrder")
    if sort_by not in (None, ""):
        try:
            sort_path = d.resolve_path(rtype, str(sort_by))
        except InvalidPath as exc:
            raise InvalidValue(f"'sortBy': {exc.detail}") from None
        sort_order = str(sort_order or "ascending").lower()
        if sort_order not in ("ascending", "descending"):
            raise InvalidValue("'sortOrder' must be 'ascending' or 'descending'")
        order = sort_key(sort_path, rtype, sort_order == "descending")
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise InvalidValue("'cursor' must be a string")
    count = _int_param(params.get("count"), "count")
    if cursor is not None:
        if params.get("startIndex") not in (None, ""):
            raise InvalidValue("'cursor' and 'startIndex' cannot be used together")
        if count is not None and not 0 <= count <= config["SCIM_MAX_PAGE_SIZE"]:
            raise InvalidCount(
                f"'count' must be between 0 and {config['SCIM_MAX_PAGE_SIZE']} with a cursor"
            )
    count = config["SCIM_DEFAULT_PAGE_SIZE"] if count is None else count
    return Query(
        where=where,
        order=order,
        sorted=bool(order),
        start_index=max(_int_param(params.get("startIndex"), "startIndex") or 1, 1),
        count=min(max(count, 0), config["SCIM_MAX_PAGE_SIZE"]),
        cursor=cursor,
        fingerprint=cursors.fingerprint(rtype.name, org.id, filter_text, sort_by, sort_order),
        attributes=parse_paths(params.get("attributes"), rtype, "attributes"),
        excluded=parse_paths(params.get("excludedAttributes"), rtype, "excludedAttributes"),
    )


def run_query(
    session: Session,
    org: AuthenticatedOrg,
    params: Mapping[str, Any],
    rtype: d.ResourceType,
    model: type,
    render: Callable[[Sequence[Any], Query, Sequence[tuple]], list[dict]],
    extra_columns: Sequence[Any] = (),
    columns: Sequence[Any] = (),
    tally: store.Tallier | None = None,
    import_page: Callable[[Session, AuthenticatedOrg, Query], store.Page] | None = None,
) -> dict:
    """One ListResponse: index pagination (``startIndex``), or RFC 9865 cursor pagination when
    ``cursor`` is present (an empty ``cursor`` starts it). ``render`` turns a page of rows (and
    the values of ``extra_columns``, read in the same query) into projected resources.
    ``tally`` (users: ``store.USER_TALLY``) gives the total of an unfiltered query without
    counting; ``import_page`` reads an unfiltered, unsorted index page (an import's)."""
    query = parse_query(org, params, rtype)
    if query.where is not None:
        tally = import_page = None  # only the type's whole set is tallied
    if query.cursor is None:
        if import_page is not None and not query.sorted:
            page = import_page(session, org, query)
        else:
            page = store.search(session, model, org.id, query.where, order_by=query.order,
                                offset=query.start_index - 1, limit=query.count,
                                extra_columns=extra_columns, columns=columns)
        resources = render(page.rows, query, page.extras)
        return {
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "itemsPerPage": len(resources),
            "startIndex": query.start_index,
            "Resources": resources,
        }
    position = cursors.decode(query.cursor, query.fingerprint) if query.cursor else {}
    offset = int(position.get("o", 0))
    search = functools.partial(
        store.search, session, model, org.id, query.where, order_by=query.order,
        offset=offset if query.sorted else 0, limit=query.count,
        after_seq=position.get("a"), before_seq=position.get("b"), columns=columns,
    )
    if tally is None:
        page = search(extra_columns=extra_columns)
    else:
        page = _tallied(session, org, tally, search, extra_columns)[0]
    resources = render(page.rows, query, page.extras)
    body: dict[str, Any] = {"schemas": [LIST_RESPONSE], "totalResults": page.total,
                            "itemsPerPage": len(resources)}
    backwards = "b" in position
    if query.sorted:
        if offset + len(page.rows) < page.total:
            body["nextCursor"] = cursors.encode({"o": offset + len(page.rows)}, query.fingerprint)
        if offset > 0:
            body["previousCursor"] = cursors.encode(
                {"o": max(offset - query.count, 0)}, query.fingerprint)
    elif page.rows:
        # Keyset: forward pages know from `more` whether rows follow; a backward page was
        # reached from a later row, so rows follow it, and `more` says whether rows precede.
        first, last = page.rows[0].seq, page.rows[-1].seq
        if page.more or backwards:
            body["nextCursor"] = cursors.encode({"a": last}, query.fingerprint)
        if (page.more and backwards) or (not backwards and "a" in position):
            body["previousCursor"] = cursors.encode({"b": first}, query.fingerprint)
    body["Resources"] = resources
    return body


def _tallied(
    session: Session,
    org: AuthenticatedOrg,
    tally: store.Tallier,
    search: Callable[..., store.Page],
    extra_columns: Sequence[Any],
    **kwargs: Any,
) -> tuple[store.Page, store.Tally]:
    """``search(**kwargs)`` with the tally read in the same statement; its ``total`` is the
    tally's. A page without rows has no tally to carry: it is read alone then."""
    page = search(with_total=False, extra_columns=[*extra_columns, *tally.columns(org.id)],
                  **kwargs)
    if page.rows:
        tallied, extras = _split_tally(page.extras)
    else:
        tallied, extras = tally.read(session, org.id), []
    return dataclasses.replace(page, total=tallied.users, extras=extras), tallied


def _split_tally(extras: Sequence[tuple]) -> tuple[store.Tally, list[tuple]]:
    """The tally that ``store.user_tally_columns`` added to every row's extra columns, and
    the extra columns without it."""
    users, changes = extras[0][-1]
    return store.Tally(int(users), int(changes)), [row[:-1] for row in extras]


def _import_page(session: Session, org: AuthenticatedOrg, query: Query) -> store.Page:
    """An unfiltered, unsorted startIndex page of users (an import walks these): its total is
    the tally, and when the page before it recorded where it ended, it starts after that row
    instead of skipping ``startIndex - 1`` rows (web/scim/positions.py)."""
    url = current_app.config["REDIS_URL"]
    skip = query.start_index - 1
    known = positions.seq_before(url, org.id, skip) if skip else None
    if query.count and (skip == 0 or known is not None):
        page, tallied = _users_after(session, org.id, known.seq if known else 0, query.count)
        if known is None or tallied.changes == known.changes:
            return _remember(url, org, skip, page, tallied)
        # Users came or went since the position was recorded: it may be off.
    search = functools.partial(store.search, session, User, org.id, None, limit=query.count,
                               columns=_RENDERED)
    page, tallied = _tallied(session, org, store.USER_TALLY, search, _user_extras(), offset=skip)
    return _remember(url, org, skip, page, tallied)


def _users_after(
    session: Session, org_id: uuid.UUID, after_seq: int, count: int
) -> tuple[store.Page, store.Tally]:
    """The ``count`` users after ``after_seq`` (0: from the first; seq starts at 1), with the
    tally read in the same statement, through the driver on the session's connection
    (``driver_rows``): SQLAlchemy's result objects were a quarter of a page's CPU."""
    rows = driver_rows(session.connection(), _after_statement(),
                       {"org_id": org_id, "after_seq": after_seq, "count": count})
    if not rows:
        tallied = store.user_tally(session, org_id)
        return store.Page([], tallied.users), tallied
    width = len(_RENDERED)
    tallied, extras = _split_tally([tuple(r[width:]) for r in rows])
    return store.Page(rows, tallied.users, extras=extras), tallied


@functools.cache
def _after_statement() -> Any:
    """Built once, like ``_by_user_name``: building a page's statement and its cache key anew
    was a sixth of an import page's instructions."""
    org_id: BindParameter[Any] = bindparam("org_id")
    return (
        select(*_RENDERED, *_user_extras(), *store.user_tally_columns(org_id))
        .where(User.org_id == org_id, User.seq > bindparam("after_seq"))
        .order_by(User.seq)
        .limit(bindparam("count"))
    )


def _remember(
    url: str, org: AuthenticatedOrg, skip: int, page: store.Page, tallied: store.Tally
) -> store.Page:
    """Record where ``page`` (which skipped ``skip`` users) ended, for the page after it."""
    end = skip + len(page.rows)
    if page.rows and end < tallied.users:
        positions.remember(url, org.id, end, tallied.changes, page.rows[-1].seq)
    return page


def _render_users(rows: Sequence[Any], query: Query, extras: Sequence[tuple]) -> list[dict]:
    """``rows``: users, or result rows of ``_RENDERED`` (what render_user reads of a user),
    all of one organization."""
    base = base_url(rows[0].org_id) if rows else ""
    if query.attributes or query.excluded:
        def shape(resource: dict) -> dict:
            return project(resource, d.USER_TYPE, query.attributes, query.excluded)
    else:  # every import page and lookup: project() would find this per user
        def shape(resource: dict) -> dict:
            return _project_default(resource, d.USER_TYPE)
    return [
        shape(
            render_user(
                u,
                (u.manager_id, extra[1]) if u.manager_id is not None else None,
                [(g[0], g[1]) for g in extra[0]] if extra[0] else [],
                base,
            )
        )
        for u, extra in zip(rows, extras, strict=True)
    ]


# What render_user reads of a user: the typed columns beside them (userName, emails, password
# hash...) are copies of `attrs` kept for indexes and filters, so a page does not load them.
# Pages and lookups read these as plain rows, not ORM objects (store.search).
# PostgreSQL writes the ids and timestamps as the response has them: a page of 100 users spent
# a fifth of its instructions turning them into UUID and datetime objects and back into text.
def _text(column: Any) -> Any:
    return cast(column, Text).label(column.key)


def _iso_utc(column: Any) -> Any:
    """The timestamp as ``users._ts`` writes it: ISO 8601 in UTC with a Z, microseconds only
    when there are some (as ``datetime.isoformat``)."""
    utc = func.timezone(literal_column("'UTC'"), column)
    fraction = case(
        (extract("microseconds", utc) % literal_column("1000000") == literal_column("0"),
         literal_column("'Z'")),
        else_=func.to_char(utc, literal_column("'.US\"Z\"'")),
    )
    whole = func.to_char(utc, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'"))
    return func.concat(whole, fraction).label(column.key)


_RENDERED = (
    _text(User.id), User.seq, User.org_id, User.attrs, _text(User.manager_id),
    User.manager_state, User.manager_reason, User.license_state, User.version,
    _iso_utc(User.created), _iso_utc(User.last_modified),
)


def query_users(session: Session, org: AuthenticatedOrg, params: Mapping[str, Any]) -> dict:
    """Run one list/search request on Users; ``params`` holds the RFC's parameter names."""
    # Each user's groups and manager's name come with the page, from correlated subqueries:
    # one query in all.
    return run_query(session, org, params, d.USER_TYPE, User, _render_users,
                     extra_columns=_user_extras(), columns=_RENDERED, tally=store.USER_TALLY,
                     import_page=_import_page)


def _user_extras() -> list[Any]:
    """What a user page reads beside `_RENDERED`: groups and the manager's name."""
    return [groups_column(), manager_column()]


# Okta and Entra look a user up by userName before every create: Entra sends `GET
# /Users?filter=userName eq "..."` and nothing else, Okta adds `&startIndex=1&count=100`. Both
# skip the general filter parser and compiler and run one statement built once (SQLAlchemy
# then reuses its compiled form without building a cache key): the same response as the
# general path, about half the CPU of the request. tests/integration/test_query.py checks the
# two agree.
_USER_NAME_EQ = re.compile(r'\s*userName\s+eq\s+("(?:[^"\\\x00-\x1f]|\\.)*")\s*', re.IGNORECASE)
_LOOKUP_PARAMS = frozenset({"filter", "startIndex", "count"})


def user_name_lookup(args: Mapping[str, Any]) -> str | None:
    """The userName of a lookup by userName (``filter=userName eq "..."``, alone or on the first
    page of one or more results), or None for any other request."""
    if not _LOOKUP_PARAMS.issuperset(args):
        return None
    # At most one user matches: the first page of any size >= 1 holds the whole answer.
    start, count = args.get("startIndex", "1"), args.get("count", "1")
    if start != "1" or not (isinstance(count, str) and count.isdigit() and int(count) >= 1):
        return None
    text = args.get("filter")
    if not isinstance(text, str) or len(text) > current_app.config["SCIM_MAX_FILTER_LENGTH"]:
        return None
    m = _USER_NAME_EQ.fullmatch(text)
    if m is None:
        return None
    try:
        value = json.loads(m.group(1))
    except ValueError:
        return None  # the general path reports the bad escape
    return value if isinstance(value, str) else None


# A lookup projects nothing away (it has no attributes/excludedAttributes).
_LOOKUP = Query(where=None, order=[], sorted=False, start_index=1, count=2, cursor=None,
                fingerprint="", attributes=[], excluded=[])


@functools.cache
def _by_user_name() -> Any:
    # userName is unique in its organization (uq_users_org_user_name), so no ORDER BY and no
    # LIMIT: with "ORDER BY seq LIMIT", a plan made while the organization was small (its
    # first lookups, whose prepared plan a connection keeps) walked (org_id, seq) and filtered
    # every user, which made an initial sync's lookups grow with the users created so far
    # (2.4 ms of PostgreSQL per lookup at 10,000 users). Planned at 200-300 users before the
    # table had statistics, even this form could walk another index on org_id alone: the
    # worker's ANALYZE mends it (models/planner.py). Both: tests/integration/test_planner.py.
    return select(*_RENDERED, *_user_extras()).where(
        User.org_id == bindparam("org_id"),
        func.lower(User.user_name) == bindparam("user_name", type_=String),
    )


def lookup_user_name(connection: Connection, org: AuthenticatedOrg, user_name: str) -> dict:
    """The ListResponse of ``userName eq "<user_name>"``. Plain columns on a plain connection
    need none of the ORM's execution machinery (40 µs of the lookup's CPU), nor SQLAlchemy's
    result objects (``driver_rows``)."""
    rows = driver_rows(connection, _by_user_name(),
                       {"org_id": org.id, "user_name": user_name.lower()})
    width = len(_RENDERED)
    return list_response(_render_users(rows, _LOOKUP, [tuple(r[width:]) for r in rows]))


def list_response(resources: list[dict]) -> dict:
    """A ListResponse holding every result (one page from index 1)."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def search_params(body: dict) -> dict:
    """The parameters of a SearchRequest body (RFC 7644 §3.4.3), keys case-insensitive."""
    lowered = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
    schemas = lowered.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise InvalidValue(f"'schemas' must be [\"{SEARCH_REQUEST}\"]")
    names = ("filter", "sortBy", "sortOrder", "startIndex", "count", "attributes",
             "excludedAttributes", "cursor")
    return {name: lowered.get(name.lower()) for name in names}


def search_users(session: Session, org: AuthenticatedOrg, body: dict) -> dict:
    """POST /Users/.search with a SearchRequest body (RFC 7644 §3.4.3)."""
    return query_users(session, org, search_params(body))
