"""RFC 7644 §3.7 Bulk: parse a BulkRequest, order its operations by their ``bulkId``
references, run each through a dispatcher, and build the BulkResponse.

Each operation is executed by ``dispatch`` (``web.scim.bulk_views`` sends it through the app's
own view functions, so it has exactly the semantics, validation, audit and follow-up jobs of the
single request, and its own transaction: one failure undoes nothing else).

Ordering and references (§3.7.2):
* ``bulkId:<id>`` anywhere in an operation's ``data`` (any string value equal to it) or as a
  segment of its ``path`` is replaced by the id of the resource created by the POST with that
  ``bulkId``; the operation waits until that POST has run, whatever their order in the request
  (forward references).
* A reference to a bulkId no POST in the request defines: 400 invalidValue; to a POST that
  failed: 409 (the referenced resource does not exist).
* Circular references (§3.7.1: Group A has member Group B, B has member A): when nothing else
  can run, a waiting Group POST whose unresolved references are all in ``members`` is created
  without those members; once the referenced resources exist the members are added with a
  PATCH, and its result carries the version after that PATCH. Any other cycle (e.g. two users
  naming each other as manager): 409 for the operations in it.
* ``failOnErrors`` (§3.7.3): after that many failed operations, processing stops; the response
  lists the operations that were processed (in request order).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from web.scim.errors import (
    Conflict,
    InvalidSyntax,
    InvalidValue,
    PayloadTooLarge,
    ScimError,
)

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
PREFIX = "bulkId:"
_PATH = re.compile(r"^/(Users|Groups)(?:/([^/?#]+))?$", re.IGNORECASE)


@dataclass
class Outcome:
    """What the dispatcher answered for one operation."""

    status: int
    body: dict | None = None
    location: str | None = None
    version: str | None = None


# dispatch(method, path, data, if_match) -> Outcome
Dispatch = Callable[[str, str, Any, str | None], Outcome]


@dataclass
class Operation:
    index: int
    method: str
    path: str
    bulk_id: str | None
    data: Any
    version: str | None
    refs: set[str] = field(default_factory=set)
    error: ScimError | None = None


def _get_ci(data: dict, key: str) -> Any:
    return next((v for k, v in data.items() if isinstance(k, str) and k.lower() == key), None)


def _refs(value: Any, out: set[str]) -> set[str]:
    if isinstance(value, str):
        if value.startswith(PREFIX) and len(value) > len(PREFIX):
            out.add(value[len(PREFIX) :])
    elif isinstance(value, dict):
        for item in value.values():
            _refs(item, out)
    elif isinstance(value, list):
        for item in value:
            _refs(item, out)
    return out


def _substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(PREFIX) and value[len(PREFIX) :] in ids:
        return ids[value[len(PREFIX) :]]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    return value


def _path_refs(path: str) -> set[str]:
    return {seg[len(PREFIX) :] for seg in path.split("/") if seg.startswith(PREFIX)}


def _substitute_path(path: str, ids: dict[str, str]) -> str:
    return "/".join(
        ids.get(seg[len(PREFIX) :], seg) if seg.startswith(PREFIX) else seg
        for seg in path.split("/")
    )


def parse_request(body: dict, max_operations: int) -> tuple[list[Operation], int | None]:
    """The operations of a BulkRequest and its ``failOnErrors``. A malformed request is one
    error (400); a malformed operation is that operation's error, reported in its result."""
    schemas = _get_ci(body, "schemas")
    if not isinstance(schemas, list) or BULK_REQUEST.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise InvalidSyntax(f"'schemas' must be [\"{BULK_REQUEST}\"]")
    raw_ops = _get_ci(body, "operations")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InvalidSyntax("A BulkRequest needs a non-empty 'Operations' list")
    if len(raw_ops) > max_operations:
        raise PayloadTooLarge(
            f"The bulk request has {len(raw_ops)} operations; maxOperations is {max_operations}"
        )
    fail_on_errors = _get_ci(body, "failonerrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool)
        or not isinstance(fail_on_errors, int)
        or fail_on_errors < 1
    ):
        raise InvalidValue("'failOnErrors' must be a positive integer")
    ops = [_parse_operation(i, raw) for i, raw in enumerate(raw_ops)]
    seen: set[str] = set()
    for op in ops:
        if op.bulk_id is not None and op.error is None:
            if op.bulk_id in seen:
                op.error = InvalidValue(f"bulkId '{op.bulk_id}' is used by two operations")
            seen.add(op.bulk_id)
    return ops, fail_on_errors


def _parse_operation(index: int, raw: Any) -> Operation:
    if not isinstance(raw, dict):
        op = Operation(index, "", "", None, None, None)
        op.error = InvalidSyntax(f"Operations[{index}] must be an object")
        return op
    method = _get_ci(raw, "method")
    method = method.upper() if isinstance(method, str) else ""
    path = _get_ci(raw, "path")
    bulk_id = _get_ci(raw, "bulkid")
    version = _get_ci(raw, "version")
    data = _get_ci(raw, "data")
    op = Operation(
        index,
        method,
        path if isinstance(path, str) else "",
        bulk_id if isinstance(bulk_id, str) and bulk_id else None,
        data,
        version if isinstance(version, str) else None,
    )
    match = _PATH.match(op.path)
    if method not in METHODS:
        op.error = InvalidValue(f"'method' must be one of {', '.join(METHODS)}")
    elif match is None:
        op.error = InvalidValue(f"'path' must be /Users, /Groups or /<type>/<id>, got {path!r}")
    elif method == "POST" and match.group(2) is not None:
        op.error = InvalidValue("POST 'path' must be the resource type endpoint, e.g. /Users")
    elif method != "POST" and match.group(2) is None:
        op.error = InvalidValue(f"{method} 'path' must name a resource, e.g. /Users/<id>")
    elif method == "POST" and op.bulk_id is None:
        op.error = InvalidValue("POST operations require a 'bulkId'")
    elif method != "DELETE" and not isinstance(data, dict):
        op.error = InvalidValue(f"{method} operations require a 'data' object")
    else:
        op.refs = _refs(data, set()) | _path_refs(op.path)
    return op


class Runner:
    """Runs the operations of one bulk request in dependency order."""

    def __init__(self, ops: list[Operation], fail_on_errors: int | None, dispatch: Dispatch):
        self.ops = ops
        self.fail_on_errors = fail_on_errors
        self.dispatch = dispatch
        self.defined = {op.bulk_id for op in ops if op.bulk_id and op.method == "POST"}
        self.ids: dict[str, str] = {}  # bulkId -> created resource id
        self.failed: set[str] = set()  # bulkIds whose POST failed
        self.results: dict[int, dict] = {}
        self.errors = 0
        # (operation, path of the created group, member references to add afterwards)
        self.deferred: list[tuple[Operation, str, list[str]]] = []

    def stopped(self) -> bool:
        return self.fail_on_errors is not None and self.errors >= self.fail_on_errors

    def run(self) -> dict:
        waiting = list(self.ops)
        while waiting and not self.stopped():
            progressed = False
            for op in list(waiting):
                if self.stopped():
                    break
                if self.ready(op):
                    waiting.remove(op)
                    self.execute(op)
                    progressed = True
            if waiting and not progressed and not self.stopped():
                breaker = self.cycle_breaker(waiting)
                if breaker is None:
                    for op in waiting:
                        self.fail(
                            op,
                            Conflict(
                                f"Operations[{op.index}]: circular bulkId references that cannot "
                                "be resolved"
                            ),
                        )
                    waiting = []
                else:
                    waiting.remove(breaker)
                    self.execute(breaker, defer=True)
        for op, path, refs in self.deferred:
            if not self.stopped():
                self.add_deferred_members(op, path, refs)
        return {
            "schemas": [BULK_RESPONSE],
            "Operations": [self.results[i] for i in sorted(self.results)],
        }

    def ready(self, op: Operation) -> bool:
        """True when ``op`` can run now (or fail now); False while it waits for a POST."""
        if op.error is not None:
            return True
        unknown = op.refs - self.defined
        if unknown:
            op.error = InvalidValue(f"unknown bulkId '{sorted(unknown)[0]}'")
            return True
        if op.refs & self.failed:
            op.error = Conflict(
                f"bulkId '{sorted(op.refs & self.failed)[0]}' refers to an operation that failed"
            )
            return True
        return op.refs <= self.ids.keys()

    def cycle_breaker(self, waiting: list[Operation]) -> Operation | None:
        for op in waiting:
            if op.method != "POST" or not op.path.lower().startswith("/groups"):
                continue
            members = _get_ci(op.data, "members")
            member_refs = _refs(members, set())
            missing = op.refs - self.ids.keys()
            other = _refs({k: v for k, v in op.data.items() if k.lower() != "members"}, set())
            if missing and missing <= member_refs and not (missing & other):
                return op
        return None

    def execute(self, op: Operation, *, defer: bool = False) -> None:
        if op.error is not None:
            self.fail(op, op.error)
            return
        data = op.data
        later: list[str] = []
        if defer:
            data, later = self._without_unresolved_members(data)
        outcome = self.dispatch(
            op.method, _substitute_path(op.path, self.ids), _substitute(data, self.ids), op.version
        )
        self.record(op, outcome)
        if outcome.status < 400 and op.method == "POST" and outcome.body:
            created = str(outcome.body.get("id"))
            if op.bulk_id:
                self.ids[op.bulk_id] = created
            if later:
                self.deferred.append((op, f"{op.path}/{created}", later))

    def _without_unresolved_members(self, data: dict) -> tuple[dict, list[str]]:
        key = next(k for k in data if k.lower() == "members")
        keep, later = [], []
        for member in data[key] or []:
            value = _get_ci(member, "value") if isinstance(member, dict) else None
            if (isinstance(value, str) and value.startswith(PREFIX)
                    and value[len(PREFIX):] not in self.ids):
                later.append(value)
            else:
                keep.append(member)
        return {**data, key: keep}, later

    def add_deferred_members(self, op: Operation, path: str, refs: list[str]) -> None:
        values = [_substitute(r, self.ids) for r in refs]
        unresolved = [r for r, v in zip(refs, values, strict=True) if v == r]
        if unresolved:
            error = Conflict(f"{unresolved[0]} refers to an operation that failed")
            self.results[op.index].update(status=str(error.status), response=error.body())
            self.errors += 1
            return
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": v} for v in values]}
            ],
        }
        outcome = self.dispatch("PATCH", path, patch, None)
        result = self.results[op.index]
        if outcome.status >= 400:
            self.errors += 1
            result.update(status=str(outcome.status), response=outcome.body)
        elif outcome.version:
            result["version"] = outcome.version

    def record(self, op: Operation, outcome: Outcome) -> None:
        result: dict[str, Any] = {"method": op.method}
        if op.bulk_id:
            result["bulkId"] = op.bulk_id
        if outcome.location:
            result["location"] = outcome.location
        if outcome.version:
            result["version"] = outcome.version
        result["status"] = str(outcome.status)
        if outcome.status >= 400:
            self.errors += 1
            if op.bulk_id:
                self.failed.add(op.bulk_id)
            if outcome.body is not None:
                result["response"] = outcome.body
        self.results[op.index] = result

    def fail(self, op: Operation, error: ScimError) -> None:
        self.record(op, Outcome(error.status, error.body()))


def run_bulk(body: dict, max_operations: int, dispatch: Dispatch) -> dict:
    ops, fail_on_errors = parse_request(body, max_operations)
    return Runner(ops, fail_on_errors, dispatch).run()
