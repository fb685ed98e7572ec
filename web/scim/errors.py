"""SCIM errors after RFC 7644 §3.12: one exception per (status, scimType), one body format.

Pure: no Flask. The web layer registers a handler that renders ``ScimError.body()``.
"""

from __future__ import annotations

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base of every error the SCIM API answers with; subclasses fix status and scimType."""

    status: int = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict:
        body: dict = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


# 400s with a scimType (RFC 7644 table 9, RFC 9865 §4)
class InvalidFilter(ScimError):
    scim_type = "invalidFilter"


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    scim_type = "mutability"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    scim_type = "invalidPath"


class NoTarget(ScimError):
    scim_type = "noTarget"


class InvalidValue(ScimError):
    scim_type = "invalidValue"


class InvalidCursor(ScimError):
    scim_type = "invalidCursor"


class ExpiredCursor(ScimError):
    scim_type = "expiredCursor"


class InvalidCount(ScimError):
    scim_type = "invalidCount"


# Errors without a scimType
class Unauthorized(ScimError):
    status = 401

    def __init__(self, detail: str = "Authentication required: a valid bearer token") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="SCIM"'})


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class Conflict(ScimError):
    status = 409


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class TooManyRequests(ScimError):
    status = 429


class InternalError(ScimError):
    status = 500


class Unavailable(ScimError):
    status = 503


class NotImplementedYet(ScimError):
    status = 501
