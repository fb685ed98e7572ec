"""The SCIM 2.0 API (RFC 7644) under ``/scim/v2/<org_id>``."""

from __future__ import annotations

import logging

from flask import Flask, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from web.scim.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ScimError,
)

log = logging.getLogger("workteam.scim")

SCIM_PREFIX = "/scim/"
# Seconds an IdP is asked to wait after a 503 (database away): a restart takes a few.
RETRY_AFTER_UNAVAILABLE = 2


def _render(error: ScimError) -> ResponseReturnValue:
    from web.scim.http import scim_response

    response = scim_response(error.body(), error.status)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def init_scim(app: Flask) -> None:
    # bulk_views and group_views add their routes to the same blueprint.
    from web.scim import audit, bulk_views, group_views  # noqa: F401
    from web.scim.views import bp

    app.register_blueprint(bp)
    audit.init_app(app)

    @app.errorhandler(ScimError)
    def _scim_error(error: ScimError) -> ResponseReturnValue:
        _rollback()
        return _render(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> ResponseReturnValue:
        if not request.path.startswith(SCIM_PREFIX):
            return error
        _rollback()
        if error.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            return _render(PayloadTooLarge(f"Request body is larger than {limit} bytes"))
        if error.code == 405:
            return _render(MethodNotAllowed(f"Method {request.method} is not allowed here"))
        if error.code == 404:
            return _render(NotFound(f"No SCIM endpoint {request.path}"))
        scim_error = ScimError(error.description or error.name)
        scim_error.status = error.code or 400
        return _render(scim_error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> ResponseReturnValue:
        _rollback()
        from web.scim.errors import InvalidValue, Unavailable

        if _is_refused_value(error):
            # SQLSTATE class 22: a value the database cannot store (out of range, bad text).
            # The client's fault, not ours; the database's message may quote the value: not
            # logged, not returned.
            log.warning("value refused by the database (%s)", type(error).__name__)
            return _render(InvalidValue("A value in the request cannot be stored"))
        log.exception("unexpected error", extra={"path": request.path})

        if _is_database_unavailable(error):
            return _render(Unavailable("The service is temporarily unavailable; retry later",
                                       headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}))
        return _render(InternalError("Internal server error"))


def _is_refused_value(error: Exception) -> bool:
    from sqlalchemy.exc import DataError

    return isinstance(error, DataError) or isinstance(
        getattr(error, "orig", None) or error, UnicodeEncodeError
    )


def _is_database_unavailable(error: Exception) -> bool:
    from sqlalchemy.exc import DBAPIError

    return (isinstance(error, DBAPIError) and bool(error.connection_invalidated)) or (
        type(error).__name__ == "OperationalError"
    )


def _rollback() -> None:
    db_session = g.get("db_session")
    if db_session is not None:
        try:
            db_session.rollback()
        except Exception:  # the connection may be gone; teardown closes it
            log.warning("rollback failed", exc_info=True)
