"""RFC 7644 §3.4.2.2 filters: text -> AST (``parse``), AST -> text (``render``), and a reference
evaluator over canonical resource dicts (``matches``).

Pure: imports neither Flask nor SQLAlchemy. ``models/query.py`` compiles the same AST to SQL;
``matches`` is the oracle its property tests compare against, and PATCH uses it for value
filters.

The AST (frozen, hashable dataclasses)
--------------------------------------
``Compare(path, op, value)``
    ``op`` is one of ``eq ne co sw ew gt ge lt le`` (lower case). ``path`` is a resolved
    ``definitions.AttrPath`` whose leaf is never complex: a comparison on a complex attribute that
    has a ``value`` sub-attribute (``emails eq "x"``, ``manager eq "id"``) is resolved to that
    sub-attribute (``emails.value``, ``manager.value``) by the parser. ``value`` is typed after the
    leaf's definition:

    * string / reference / binary: ``str`` (an unquoted number is kept as its text);
    * boolean: ``bool``; integer/decimal: ``int``/``float``;
    * dateTime: an aware ``datetime`` (naive input is taken as UTC);
    * ``None`` only with ``eq`` (attribute absent) and ``ne`` (attribute present).

``Present(path)``
    ``pr``. ``path`` may be complex (``name pr``, ``emails pr``).
``And(left, right)``, ``Or(left, right)``, ``Not(node)``
    Left-associative chains: ``a and b and c`` is ``And(And(a, b), c)``.
``ValuePath(attr, filter)``
    ``emails[type eq "work" and value co "@x"]``: true when ONE element of the (multi-valued,
    or single-valued complex) attribute ``attr`` satisfies ``filter`` (SQL: EXISTS over the
    elements; so with no elements it is false even for ``emails[value eq null]`` or
    ``emails[not (type eq "work")]``). Inside ``filter`` every
    path is a full ``AttrPath`` of a sub-attribute of ``attr`` (``emails.type``), evaluated
    against that same element. Entra's ``emails[type eq "work"].value eq "x"`` is parsed as
    ``ValuePath(emails, And(<emails.type eq "work">, <emails.value eq "x">))``.

Semantics (what ``matches`` does and SQL must do)
-------------------------------------------------
* Multi-valued attributes: a comparison matches if ANY value matches (RFC 7644 §3.4.2.2). An
  absent attribute has no values, so every comparison except ``eq null`` is false on it —
  including ``ne`` (``title ne "x"`` is false for a user without a title; SQL's
  ``title <> 'x'`` gives the same).
* ``Not`` is the strict two-valued complement of its operand (``not (title eq "x")`` is TRUE for
  a user without a title), so SQL must not let a NULL propagate through NOT.
* Strings with ``caseExact`` false are compared after ``str.lower()`` of both sides (SQL:
  ``lower()``); ordering (gt/ge/lt/le) of strings is by code point (SQL: ``COLLATE "C"``).
* dateTime values are compared as instants; the resource holds ISO 8601 strings.
* ``pr``: present means not null, not ``""``, not ``[]``, not ``{}``.
* ``eq null`` is "not present", ``ne null`` is "present".

Tolerances (documented departures from the ABNF)
------------------------------------------------
* Entra's sloppy unquoted values (``externalId eq jyoung``): a bare word that is not
  ``true``/``false``/``null`` or a JSON number is taken as a string literal.
* ``"true"``/``"false"`` in quotes compare with boolean attributes as booleans.
* Keywords, operators and ``true/false/null`` are case-insensitive (ABNF literals are).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from web.scim.definitions import AttrPath, ResourceType, resolve_path
from web.scim.errors import InvalidFilter, InvalidPath

__all__ = [
    "COMPARE_OPS",
    "And",
    "Compare",
    "Node",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "ValuePath",
    "element_matches",
    "elements",
    "matches",
    "parse",
    "parse_datetime",
    "parse_path",
    "render",
]

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})

Value: TypeAlias = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class Compare:
    """``path op value`` (see module docstring for typing of ``value``)."""

    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: one element of ``attr`` satisfies ``filter`` (paths are ``attr.sub``)."""

    attr: AttrPath
    filter: Node


Node: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``attrPath`` or ``valuePath [ "." subAttr ]``.

    ``attr``: the attribute (may include a sub-attribute when there is no filter,
    e.g. ``name.familyName``). ``filter``: the value filter or None. ``sub``: for
    ``emails[type eq "work"].value``, the path of the sub-attribute (``emails.value``), else None.
    """

    attr: AttrPath
    filter: Node | None = None
    sub: AttrPath | None = None

    def __str__(self) -> str:
        if self.filter is None:
            return str(self.attr)
        text = f"{self.attr}[{_render(self.filter, inner=True)}]"
        return f"{text}.{self.sub.sub_attribute}" if self.sub is not None else text


# --------------------------------------------------------------------------- datetimes


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 / xsd:dateTime string (naive -> UTC), else None."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- parser

_WS = re.compile(r"\s*")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$:.\-]*")
_SUBNAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$\-]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"')
_BAREWORD = re.compile(r'[^\s()\[\]"]+')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_KEYWORD_END = re.compile(r"(?=[\s()\[\]\"]|$)")

_MISSING = object()


class _Parser:
    def __init__(self, text: str, rtype: ResourceType, max_nodes: int, max_depth: int) -> None:
        self.text = text
        self.rtype = rtype
        self.pos = 0
        self.nodes = 0
        self.max_nodes = max_nodes
        self.depth = 0
        self.max_depth = max_depth

    # -- helpers
    def fail(self, message: str) -> InvalidFilter:
        return InvalidFilter(f"Invalid filter at position {self.pos}: {message} in '{self.text}'")

    def ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def keyword(self, *words: str) -> str | None:
        """Consume one of ``words`` (case-insensitive, whole word) and return it in lower case."""
        self.ws()
        for word in words:
            end = self.pos + len(word)
            if self.text[self.pos : end].lower() == word and _KEYWORD_END.match(self.text, end):
                self.pos = end
                return word
        return None

    def expect(self, char: str) -> None:
        self.ws()
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "end of filter"
            raise self.fail(f"expected '{char}', found {found}")
        self.pos += 1

    def count(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise InvalidFilter(f"Filter too complex: more than {self.max_nodes} expressions")
        return node

    # -- grammar
    def parse(self) -> Node:
        node = self.parse_or(None)
        self.ws()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos : self.pos + 20]!r}")
        return node

    def parse_or(self, parent: AttrPath | None) -> Node:
        self.depth += 1
        if self.depth > self.max_depth:
            raise InvalidFilter(f"Filter too deeply nested: more than {self.max_depth} levels")
        node = self.parse_and(parent)
        while self.keyword("or"):
            node = self.count(Or(node, self.parse_and(parent)))
        self.depth -= 1
        return node

    def parse_and(self, parent: AttrPath | None) -> Node:
        node = self.parse_unary(parent)
        while self.keyword("and"):
            node = self.count(And(node, self.parse_unary(parent)))
        return node

    def parse_unary(self, parent: AttrPath | None) -> Node:
        self.ws()
        start = self.pos
        if self.keyword("not"):
            self.ws()
            if self.peek() == "(":
                self.pos += 1
                node = self.parse_or(parent)
                self.expect(")")
                return self.count(Not(node))
            self.pos = start
            raise self.fail("'not' must be followed by a parenthesised filter: not (...)")
        if self.peek() == "(":
            self.pos += 1
            node = self.parse_or(parent)
            self.expect(")")
            return node
        return self.parse_attr_exp(parent)

    def read_name(self, pattern: re.Pattern[str], what: str) -> str:
        self.ws()
        m = pattern.match(self.text, self.pos)
        if not m:
            found = repr(self.text[self.pos : self.pos + 20]) if self.peek() else "end of filter"
            raise self.fail(f"expected {what}, found {found}")
        self.pos = m.end()
        return m.group()

    def resolve(self, name: str, parent: AttrPath | None) -> AttrPath:
        try:
            if parent is None:
                path = resolve_path(self.rtype, name)
            else:
                path = parent.with_sub(name)
        except InvalidPath as exc:
            raise InvalidFilter(f"{exc.detail} in filter '{self.text}'") from None
        if path.definition.returned == "never" or path.parent.returned == "never":
            raise InvalidFilter(f"Attribute '{path}' cannot be used in a filter")
        return path

    def parse_attr_exp(self, parent: AttrPath | None) -> Node:
        name = self.read_name(_SUBNAME if parent else _NAME, "an attribute name")
        path = self.resolve(name, parent)
        if self.peek() == "[":
            if parent is not None:
                raise self.fail("nested value filters are not allowed")
            if path.sub_attribute is not None or not path.definition.is_complex:
                raise InvalidFilter(
                    f"Value filter on '{path}' which is not a complex attribute "
                    f"in filter '{self.text}'"
                )
            self.pos += 1
            inner = self.parse_or(path)
            self.expect("]")
            if self.peek() == ".":  # Entra: emails[type eq "work"].value eq "x"
                self.pos += 1
                sub = self.resolve(self.read_name(_SUBNAME, "a sub-attribute name"), path)
                inner = self.count(And(inner, self.parse_operation(sub)))
            return self.count(ValuePath(path, inner))
        return self.parse_operation(path)

    def parse_operation(self, path: AttrPath) -> Node:
        op = self.keyword("pr", *sorted(COMPARE_OPS))
        if op is None:
            found = repr(self.text[self.pos : self.pos + 20]) if self.peek() else "end of filter"
            raise self.fail(f"expected an operator after '{path}', found {found}")
        if op == "pr":
            return self.count(Present(path))
        if path.definition.is_complex:
            value_sub = path.definition.sub("value")
            if value_sub is None:
                raise InvalidFilter(
                    f"Complex attribute '{path}' can only be used with 'pr' or a value filter "
                    f"in filter '{self.text}'"
                )
            path = path.with_sub("value")
        value = self.parse_value(path, op)
        return self.count(Compare(path, op, value))

    def parse_value(self, path: AttrPath, op: str) -> Value:
        self.ws()
        if self.peek() == '"':
            m = _STRING.match(self.text, self.pos)
            if not m:
                raise self.fail("unterminated or invalid string literal")
            try:
                raw: Any = json.loads(m.group())
            except ValueError:
                raise self.fail("invalid escape in string literal") from None
            self.pos = m.end()
            return self.typed(path, op, raw, text=None)
        m = _BAREWORD.match(self.text, self.pos)
        if not m:
            raise self.fail(f"expected a value after '{path} {op}'")
        word = m.group()
        self.pos = m.end()
        low = word.lower()
        if low in ("true", "false"):
            return self.typed(path, op, low == "true", text=word)
        if low == "null":
            return self.typed(path, op, None, text=word)
        num = _NUMBER.fullmatch(word)
        if num:
            number: int | float = float(word) if num.group(1) or num.group(2) else int(word)
            return self.typed(path, op, number, text=word)
        return self.typed(path, op, word, text=word)  # Entra tolerance

    def typed(self, path: AttrPath, op: str, raw: Any, text: str | None) -> Any:
        atype = path.definition.type
        where = f"'{path} {op}' in filter '{self.text}'"
        if raw is None:
            if op not in ("eq", "ne"):
                raise InvalidFilter(f"null can only be compared with eq or ne: {where}")
            return None
        if atype == "boolean":
            if op in _ORDER_OPS or op in _SUBSTRING_OPS:
                raise InvalidFilter(f"Operator '{op}' is not allowed on a boolean: {where}")
            if isinstance(raw, str) and raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            if not isinstance(raw, bool):
                raise InvalidFilter(f"Expected true or false: {where}")
            return raw
        if atype == "binary" and op in _ORDER_OPS:
            raise InvalidFilter(f"Operator '{op}' is not allowed on a binary attribute: {where}")
        if atype in ("string", "reference", "binary"):
            if isinstance(raw, bool):
                raise InvalidFilter(f"Expected a string, found a boolean: {where}")
            if isinstance(raw, int | float):
                return text  # unquoted number against a string attribute: keep its text
            return raw
        if op in _SUBSTRING_OPS:
            raise InvalidFilter(f"Operator '{op}' is only allowed on strings: {where}")
        if atype == "dateTime":
            dt = parse_datetime(raw) if isinstance(raw, str) else None
            if dt is None:
                raise InvalidFilter(f"Expected a dateTime string: {where}")
            return dt
        if atype in ("integer", "decimal"):
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise InvalidFilter(f"Expected a number: {where}")
            if atype == "integer" and isinstance(raw, float):
                raise InvalidFilter(f"Expected an integer: {where}")
            return raw
        raise InvalidFilter(f"Cannot compare {where}")  # pragma: no cover


def parse(
    text: str,
    rtype: ResourceType,
    *,
    max_length: int = 2000,
    max_nodes: int = 100,
    max_depth: int = 50,
) -> Node:
    """Parse an RFC 7644 §3.4.2.2 filter for resources of ``rtype``.

    Raises ``InvalidFilter`` for bad syntax, trailing garbage, unknown attributes, attributes
    that are never returned (``password``), type/operator mismatches, and filters longer than
    ``max_length`` characters, with more than ``max_nodes`` AST nodes or nested deeper than
    ``max_depth`` parentheses.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidFilter("Empty filter")
    if len(text) > max_length:
        raise InvalidFilter(f"Filter too long: more than {max_length} characters")
    return _Parser(text, rtype, max_nodes, max_depth).parse()


def parse_path(text: str, rtype: ResourceType, *, max_length: int = 2000) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2 ``PATH = attrPath / valuePath [subAttr]``).

    Raises ``InvalidPath`` when the path is malformed or names an unknown attribute and
    ``InvalidFilter`` when the value filter inside ``[...]`` is invalid (RFC 7644 Table 9).
    A bare schema URN (whole extension) is not a PatchPath: callers check ``resolve_schema``
    first.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidPath("Empty path")
    if len(text) > max_length:
        raise InvalidPath(f"Path too long: more than {max_length} characters")
    text = text.strip()
    bracket = text.find("[")
    if bracket < 0:
        if "]" in text:
            raise InvalidPath(f"Invalid path '{text}'")
        return PatchPath(resolve_path(rtype, text))
    attr = resolve_path(rtype, text[:bracket])
    if attr.sub_attribute is not None or not attr.definition.is_complex:
        raise InvalidPath(f"Value filter on '{attr}' which is not a complex attribute: '{text}'")
    parser = _Parser(text, rtype, 100, 50)
    parser.pos = bracket + 1
    inner = parser.parse_or(attr)
    parser.expect("]")
    sub: AttrPath | None = None
    if parser.peek() == ".":
        parser.pos += 1
        m = _SUBNAME.match(text, parser.pos)
        if not m:
            raise InvalidPath(f"Expected a sub-attribute after ']' in path '{text}'")
        sub = attr.with_sub(m.group())
        parser.pos = m.end()
    if parser.pos != len(text):
        raise InvalidPath(f"Unexpected {text[parser.pos :]!r} in path '{text}'")
    return PatchPath(attr, inner, sub)


# --------------------------------------------------------------------------- render


def _literal(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value)


def _render(node: Node, *, inner: bool = False) -> str:
    def name(path: AttrPath) -> str:
        return path.sub_attribute or path.attribute if inner else str(path)

    if isinstance(node, Compare):
        return f"{name(node.path)} {node.op} {_literal(node.value)}"
    if isinstance(node, Present):
        return f"{name(node.path)} pr"
    if isinstance(node, And):
        return f"({_render(node.left, inner=inner)}) and ({_render(node.right, inner=inner)})"
    if isinstance(node, Or):
        return f"({_render(node.left, inner=inner)}) or ({_render(node.right, inner=inner)})"
    if isinstance(node, Not):
        return f"not ({_render(node.node, inner=inner)})"
    if isinstance(node, ValuePath):
        return f"{node.attr}[{_render(node.filter, inner=True)}]"
    raise TypeError(f"not a filter node: {node!r}")


def render(node: Node) -> str:
    """Filter text for ``node``; ``parse(render(n), rtype) == n`` for every parsed ``n``."""
    return _render(node)


# --------------------------------------------------------------------------- evaluation


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _values(path: AttrPath, resource: dict) -> list[Any]:
    """The values of ``path`` in ``resource`` (a flat list; absent -> [])."""
    container: Any = resource.get(path.schema_id) if path.extension else resource
    if not isinstance(container, dict):
        return []
    top = container.get(path.attribute)
    items = top if isinstance(top, list) else [top]
    if path.sub_attribute is None:
        return [v for v in items if v is not None]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            v = item.get(path.sub_attribute)
            if isinstance(v, list):
                out.extend(x for x in v if x is not None)
            elif v is not None:
                out.append(v)
    return out


def _compare(path: AttrPath, op: str, actual: Any, expected: Any) -> bool:
    atype = path.definition.type
    a: Any  # the two values compared, of the attribute's type
    b: Any
    if atype == "dateTime":
        a = parse_datetime(actual)
        b = expected
        if a is None or not isinstance(b, datetime):
            return False
    elif atype == "boolean":
        if not isinstance(actual, bool) or not isinstance(expected, bool):
            return False
        a, b = actual, expected
    elif atype in ("integer", "decimal"):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        a, b = actual, expected
    else:
        if not isinstance(actual, str) or not isinstance(expected, str):
            return False
        a, b = actual, expected
        if not path.definition.case_exact:
            a, b = a.lower(), b.lower()
    try:
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        if op == "co":
            return b in a
        if op == "sw":
            return a.startswith(b)
        if op == "ew":
            return a.endswith(b)
        if op == "gt":
            return a > b
        if op == "ge":
            return a >= b
        if op == "lt":
            return a < b
        if op == "le":
            return a <= b
    except TypeError:
        return False
    return False  # pragma: no cover


def matches(node: Node, resource: dict, rtype: ResourceType | None = None) -> bool:
    """Whether the canonical ``resource`` dict satisfies ``node`` (semantics: module docstring).

    Never raises for any dict: values of unexpected types simply do not match. ``rtype`` is
    accepted for symmetry with ``parse`` (paths in the AST are already resolved).
    """
    if isinstance(node, And):
        return matches(node.left, resource, rtype) and matches(node.right, resource, rtype)
    if isinstance(node, Or):
        return matches(node.left, resource, rtype) or matches(node.right, resource, rtype)
    if isinstance(node, Not):
        return not matches(node.node, resource, rtype)
    if isinstance(node, Present):
        return any(_present(v) for v in _values(node.path, resource))
    if isinstance(node, Compare):
        values = _values(node.path, resource)
        if node.value is None:
            present = any(_present(v) for v in values)
            return present if node.op == "ne" else not present
        return any(_compare(node.path, node.op, v, node.value) for v in values)
    if isinstance(node, ValuePath):
        return any(
            matches(node.filter, element, rtype) for element in elements(node.attr, resource)
        )
    raise TypeError(f"not a filter node: {node!r}")


def elements(attr: AttrPath, resource: dict) -> list[dict]:
    """Single-element resources, one per element of complex attribute ``attr`` of ``resource``.

    Each has the shape ``{attr: [element]}`` (inside the extension key when needed), so a value
    filter whose paths are ``attr.sub`` can be evaluated per element with ``matches``.
    """
    container: Any = resource.get(attr.schema_id) if attr.extension else resource
    if not isinstance(container, dict):
        return []
    top = container.get(attr.attribute)
    items = top if isinstance(top, list) else [top]
    out = []
    for item in items:
        if isinstance(item, dict):
            single: dict = {attr.attribute: [item]}
            out.append({attr.schema_id: single} if attr.extension else single)
    return out


def element_matches(node: Node, attr: AttrPath, element: Any) -> bool:
    """Whether one element of complex attribute ``attr`` satisfies value filter ``node``."""
    if not isinstance(element, dict):
        return False
    single: dict = {attr.attribute: [element]}
    return matches(node, {attr.schema_id: single} if attr.extension else single)
