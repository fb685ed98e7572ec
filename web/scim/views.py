"""SCIM HTTP endpoints: thin. Authenticate, parse, call the resource service, respond."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.orm import Session

from models import store
from models.errors import DuplicateError, NotFoundError, VersionConflict
from models.user import User
from web.database import autocommit_connection, session
from web.scim import definitions as d
from web.scim import discovery, listing, users
from web.scim.auth import authenticate
from web.scim.errors import NotFound, NotImplementedYet, PreconditionFailed, Uniqueness
from web.scim.http import (
    check_if_match,
    if_none_match_hits,
    json_body,
    scim_response,
)

bp = Blueprint("scim", __name__, url_prefix="/scim/v2/<org_id>")

# Retries of a read-modify-write that lost a race to another writer (no If-Match given).
WRITE_ATTEMPTS = 3


@bp.url_value_preprocessor
def _pull_org(_endpoint: str | None, values: dict | None) -> None:
    g.org_id_raw = (values or {}).pop("org_id", "")


DISCOVERY_ENDPOINTS = {
    "scim.service_provider_config",
    "scim.schemas",
    "scim.schema",
    "scim.resource_types",
    "scim.resource_type",
}


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in DISCOVERY_ENDPOINTS and current_app.config["SCIM_DISCOVERY_PUBLIC"]:
        return  # RFC 7644 §4: discovery MAY be public; off unless configured
    ctx = g._get_current_object()  # once: a proxy access costs ~1-2 µs
    ctx.org = authenticate(session, ctx.org_id_raw)
    ctx.org_id = ctx.org.id


def _commit(job_ids: list[int]) -> None:
    """Commit, then publish the follow-up jobs the transaction wrote."""
    from models.jobs import ENQUEUED_KINDS

    db_session = session()
    db_session.commit()
    _publish(job_ids, db_session.info.pop(ENQUEUED_KINDS, None))


def _publish(job_ids: list[int], kinds: dict[int, str] | None) -> None:
    """Publish committed follow-up jobs (never fails the request: what cannot be published
    now is left pending for the outbox sweep)."""
    if job_ids:
        from tasks.outbox import publish

        publish(job_ids, kinds)


def _paid() -> bool:
    # Authentication admits only organizations on the paid plan; the store need not re-read it.
    return g.org.plan == "paid"


# What a user's response shows besides its row: its direct groups, and its manager when the
# reference is resolved (id, display name).
Shown = tuple[list[tuple[Any, str]], users.ManagerRef | None]


def _read_user(
    user_id: str, *, lock: bool = False, db: Session | None = None
) -> tuple[store.StoredUser, Shown]:
    """The user, its groups and its manager's name, in one statement (on ``db``'s connection,
    by default the request's autocommit connection)."""
    connection = db.connection() if db is not None else autocommit_connection()
    try:
        shown = store.read_user(connection, g.org.id, user_id, lock=lock)
    except NotFoundError:
        raise NotFound(f"User {user_id} not found") from None
    return shown.user, _shown(shown)


def _shown(shown: store.ShownUser) -> Shown:
    user = shown.user
    manager = (user.manager_id, shown.manager_name) if user.manager_id is not None else None
    return shown.groups, manager


def _manager_of(
    user: store.StoredUser, known: users.ManagerRef | None = None
) -> users.ManagerRef | None:
    if user.manager_id is None:
        return None
    if known is not None and known[0] == user.manager_id:
        return known
    manager = session().get(User, user.manager_id)
    return (manager.id, manager.display_name or manager.user_name) if manager else None


def _user_response(user: store.StoredUser, shown: Shown, status: int = 200) -> Response:
    """The user as stored, projected by ``attributes``/``excludedAttributes`` (RFC 7644
    §3.4.2.5 allows them on every operation that returns a resource). ``shown``: its groups
    and manager as read before a write (a user write changes neither its groups nor, unless
    the reference changed, its manager)."""
    groups, manager = shown
    body = listing.project(
        users.render_user(user, _manager_of(user, manager), groups),
        d.USER_TYPE,
        listing.parse_paths(request.args.get("attributes"), d.USER_TYPE, "attributes"),
        listing.parse_paths(
            request.args.get("excludedAttributes"), d.USER_TYPE, "excludedAttributes"
        ),
    )
    return scim_response(
        body,
        status,
        version=user.version,
        location=users.location(user) if status == 201 else None,
    )


# ---------------------------------------------------------------------------------- Users


@bp.post("/Users")
def create_user() -> Response:
    attrs, password = users.parse_user_body(json_body())
    try:
        # One statement (the row and its follow-up jobs), committed as it runs.
        result = store.create_user(
            autocommit_connection(), g.org.id, attrs, users.password_hash_for(password),
            paid=_paid(),
        )
    except DuplicateError as exc:
        raise Uniqueness(str(exc)) from None
    g.resource_id = str(result.user.id)
    _publish(result.job_ids, result.job_kinds)
    # A new user has no groups yet (pending memberships are linked later, by the worker).
    return _user_response(result.user, ([], None), 201)


@bp.get("/Users/<user_id>")
def get_user(user_id: str) -> Response:
    user, shown = _read_user(user_id)
    g.resource_id = str(user.id)
    if if_none_match_hits(user.version):
        return scim_response(None, 304, version=user.version)
    return _user_response(user, shown)


@bp.get("/Users")
def list_users() -> Response:
    user_name = listing.user_name_lookup(request.args)
    if user_name is not None:  # an IdP's lookup before a create: one Core statement
        return scim_response(listing.lookup_user_name(autocommit_connection(), g.org, user_name))
    return scim_response(listing.query_users(session(), g.org, request.args))


@bp.post("/Users/.search")
def search_users() -> Response:
    return scim_response(listing.search_users(session(), g.org, json_body()))


@bp.post("/.search")
def search_all() -> Response:
    """RFC 7644 §3.4.3 at the root: every resource type the query applies to."""
    from web.scim.root_search import search_root

    return scim_response(search_root(session(), g.org, json_body()))


def _write_user(
    user_id: str, make_attrs: Callable[[store.StoredUser], tuple[dict, str | None]]
) -> Response:
    """Read, compute the new attributes, write with a version check; retry lost races, the
    last time under a row lock so that a busy user cannot starve a writer. The write is one
    statement (store.replace_user): until that last attempt, the read and the write each run
    on the request's autocommit connection, with no BEGIN and no COMMIT round trip."""
    for attempt in range(WRITE_ATTEMPTS):
        locked = attempt == WRITE_ATTEMPTS - 1
        db = session() if locked else None
        user, shown = _read_user(user_id, lock=locked, db=db)
        g.resource_id = str(user.id)
        asserted = check_if_match(user.version)
        attrs, password = make_attrs(user)
        try:
            result = store.replace_user(
                db or autocommit_connection(),
                user,
                attrs,
                password_hash=users.password_hash_for(password),
                expected_version=asserted,
                paid=_paid(),
            )
        except DuplicateError as exc:
            raise Uniqueness(str(exc)) from None
        except VersionConflict:
            if asserted is not None:
                raise PreconditionFailed(
                    f"User {user_id} changed since version W/\"{asserted}\""
                ) from None
            continue
        if locked:
            _commit(result.job_ids)
        else:
            _publish(result.job_ids, result.job_kinds)
        return _user_response(result.user, shown)
    raise AssertionError("a locked write cannot lose a version race")


@bp.put("/Users/<user_id>")
def replace_user(user_id: str) -> Response:
    body = json_body()
    attrs, password = users.parse_user_body(body)
    _check_id_matches(body, user_id)
    return _write_user(user_id, lambda _user: (attrs, password))


@bp.patch("/Users/<user_id>")
def patch_user(user_id: str) -> Response:
    from web.scim.patch import active_only, apply_patch

    body = json_body()
    max_operations = current_app.config["SCIM_MAX_PATCH_OPERATIONS"]
    active = active_only(body, max_operations)
    if active is not None and "If-Match" not in request.headers:
        done = _set_active(user_id, active)
        if done is not None:
            return done

    def make_attrs(user: store.StoredUser) -> tuple[dict, str | None]:
        resource, changes = apply_patch(
            users.patch_target(user),
            body,
            d.USER_TYPE,
            max_operations=max_operations,
        )
        attrs, _ = users.validate_user(resource)
        return attrs, changes.password

    return _write_user(user_id, make_attrs)


def _set_active(user_id: str, active: bool) -> Response | None:
    """A PATCH that only sets ``active``, as one statement with no read before it; None when
    it found no user, for the general path to answer."""
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        return None
    done = store.set_user_active(autocommit_connection(), g.org.id, uid, active, paid=_paid())
    if done is None:
        return None
    result, shown = done
    g.resource_id = str(uid)
    _publish(result.job_ids, result.job_kinds)
    return _user_response(result.user, _shown(shown))


@bp.delete("/Users/<user_id>")
def delete_user(user_id: str) -> Response:
    try:
        user = store.get_user(session(), g.org.id, user_id)
    except NotFoundError:
        raise NotFound(f"User {user_id} not found") from None
    g.resource_id = str(user.id)
    check_if_match(user.version)
    job_ids = store.delete_user(session(), user, paid=_paid())
    _commit(job_ids)
    return scim_response(None, 204)


def _check_id_matches(body: dict, user_id: str) -> None:
    """PUT may carry the resource's id (Okta does); it is readOnly, so a different one is
    ignored like any readOnly value, but we do not silently let it target another user."""
    sent = next((v for k, v in body.items() if k.lower() == "id"), None)
    if sent is not None and str(sent) != user_id:
        try:
            same = uuid.UUID(str(sent)) == uuid.UUID(user_id)
        except ValueError:
            same = False
        if not same:
            from web.scim.errors import Mutability

            raise Mutability(f"id '{sent}' in the body does not match the URL's '{user_id}'")


# ------------------------------------------------------------------------------ discovery


@bp.get("/ServiceProviderConfig")
def service_provider_config() -> Response:
    return scim_response(discovery.service_provider_config(current_app.config, g.org_id_raw))


@bp.get("/Schemas")
def schemas() -> Response:
    return scim_response(discovery.schemas_list(g.org_id_raw))


@bp.get("/Schemas/<path:schema_id>")
def schema(schema_id: str) -> Response:
    return scim_response(discovery.schema(g.org_id_raw, schema_id))


@bp.get("/ResourceTypes")
def resource_types() -> Response:
    return scim_response(discovery.resource_types_list(g.org_id_raw))


@bp.get("/ResourceTypes/<name>")
def resource_type(name: str) -> Response:
    return scim_response(discovery.resource_type(g.org_id_raw, name))


# ------------------------------------------------------------------------------------ /Me


@bp.route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me() -> Response:
    # RFC 7644 §3.11: "A service provider that does NOT support this feature SHOULD respond
    # with HTTP status code 501". The bearer token is the organization's provisioning
    # credential and names no user. Answered after authentication: a bad token is a 401.
    raise NotImplementedYet(
        "/Me is not supported: the bearer token is the organization's provisioning credential, "
        "not a user's"
    )
