"""Filter AST -> one SQLAlchemy expression, run by PostgreSQL; sortBy -> an ORDER BY key.

Attributes with a real column (``models``' whitelist below) compile to indexed column
comparisons; every other attribute compiles to a JSONB expression over ``attrs``, the stored
resource. Nothing is ever evaluated in Python, and filter text never reaches SQL as text: every
value is a bound parameter. Semantics follow ``web.scim.filter.matches`` (the oracle of the
property tests): absent values do not match, NOT is the two-valued complement, caseExact=false
compares lower-cased, string ordering is by code point.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Numeric,
    String,
    Text,
    Uuid,
    and_,
    any_,
    cast,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement as _CE

from models.group import Group, Membership
from models.user import User
from web.scim import definitions as d
from web.scim.errors import InvalidFilter
from web.scim.filter import And, Compare, Node, Not, Or, Present, ValuePath

Key = tuple[str, str, str | None]  # (schema id, attribute, sub-attribute), canonical names


@dataclass(frozen=True)
class ResourceMapping:
    """How one resource type's attributes live in SQL."""

    model: type
    columns: dict[Key, Any]
    # Attributes computed from other tables (e.g. a user's groups): key -> (element -> SQL).
    special: dict[Key, Callable[[Compare | Present], ColumnElement[bool]]]
    # Sort keys for attributes whose column differs from the filter column.
    sort_columns: dict[Key, Any]


E = d.ENTERPRISE_USER_SCHEMA_ID
W = d.WORKTEAM_USER_SCHEMA_ID
U = d.USER_SCHEMA_ID

USER_MAPPING = ResourceMapping(
    model=User,
    columns={
        (U, "id", None): User.id,
        (U, "externalId", None): User.external_id,
        (U, "userName", None): User.user_name,
        (U, "displayName", None): User.display_name,
        (U, "nickName", None): User.nick_name,
        (U, "title", None): User.title,
        (U, "name", "givenName"): User.given_name,
        (U, "name", "familyName"): User.family_name,
        (U, "meta", "created"): User.created,
        (U, "meta", "lastModified"): User.last_modified,
        (E, "employeeNumber", None): User.employee_number,
        (E, "department", None): User.department,
        (E, "manager", "value"): User.manager_value,
        (W, "managerState", None): User.manager_state,
        (W, "licenseState", None): User.license_state,
        (W, "managerStateReason", None): User.manager_reason,
    },
    special={},
    sort_columns={
        (U, "emails", None): User.primary_email,
        (U, "emails", "value"): User.primary_email,
    },
)

G = d.GROUP_SCHEMA_ID


def _member_exists(*conditions: Any) -> ColumnElement[bool]:
    return exists(select(literal(1)).select_from(Membership).where(*conditions))


def _group_members_value(node: Compare | Present) -> ColumnElement[bool]:
    """``members.value`` / ``members pr`` on Groups: an EXISTS over memberships (the member
    list is not in ``attrs``). Member values are caseExact (they are ids)."""
    if isinstance(node, Present):
        return _member_exists(Membership.group_id == Group.id)
    if node.op not in ("eq", "ne") or not isinstance(node.value, str):
        raise InvalidFilter("members.value supports only 'eq' and 'ne' with a string")
    from models.memberships import normalise_value

    hit = _member_exists(
        Membership.group_id == Group.id, Membership.member_value == normalise_value(node.value)
    )
    return hit if node.op == "eq" else not_(hit)


def _not_filterable(node: Compare | Present) -> ColumnElement[bool]:
    raise InvalidFilter(f"'{node.path}' is not filterable; filter on '{node.path.attribute}.value'")


def _user_groups_value(node: Compare | Present) -> ColumnElement[bool]:
    """``groups.value`` / ``groups pr`` on Users: the user's direct memberships."""
    if isinstance(node, Present):
        return _member_exists(Membership.user_id == User.id)
    if node.op not in ("eq", "ne") or not isinstance(node.value, str):
        raise InvalidFilter("groups.value supports only 'eq' and 'ne' with a string")
    try:
        group_id = uuid.UUID(node.value)
    except ValueError:
        return false() if node.op == "eq" else true()
    hit = _member_exists(Membership.user_id == User.id, Membership.group_id == group_id)
    return hit if node.op == "eq" else not_(hit)


USER_MAPPING.special.update(
    {(U, "groups", sub): _not_filterable for sub in ("display", "$ref", "type")}
)
USER_MAPPING.special[(U, "groups", None)] = _user_groups_value
USER_MAPPING.special[(U, "groups", "value")] = _user_groups_value

GROUP_MAPPING = ResourceMapping(
    model=Group,
    columns={
        (G, "id", None): Group.id,
        (G, "externalId", None): Group.external_id,
        (G, "displayName", None): Group.display_name,
        (G, "meta", "created"): Group.created,
        (G, "meta", "lastModified"): Group.last_modified,
    },
    special={
        (G, "members", None): _group_members_value,
        (G, "members", "value"): _group_members_value,
        **{(G, "members", sub): _not_filterable for sub in ("display", "$ref", "type")},
    },
    sort_columns={},
)

MAPPINGS: dict[str, ResourceMapping] = {"User": USER_MAPPING, "Group": GROUP_MAPPING}


def _key(path: d.AttrPath) -> Key:
    return (path.schema_id, path.attribute, path.sub_attribute)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_compare(col: Any, op: str, value: str, case_exact: bool) -> ColumnElement[bool]:
    left = col if case_exact else func.lower(col)
    right: Any = value if case_exact else value.lower()
    if op in ("co", "sw", "ew"):
        pattern = _escape_like(right)
        pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op]
        return left.like(pattern, escape="\\")
    if op in ("gt", "ge", "lt", "le"):
        left = left.collate("C")
    return _ordered(left, op, literal(right, String))


def _ordered(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    return {
        "eq": lambda: left == right,
        "ne": lambda: left != right,
        "gt": lambda: left > right,
        "ge": lambda: left >= right,
        "lt": lambda: left < right,
        "le": lambda: left <= right,
    }[op]()


def _column_compare(path: d.AttrPath, col: Any, node: Compare) -> ColumnElement[bool]:
    op, value = node.op, node.value
    if value is None:  # eq null: absent; ne null: present
        present = _column_present(col, path)
        return not_(present) if op == "eq" else present
    if path.attribute == "id" and path.sub_attribute is None:
        if op == "eq":
            try:
                return col == uuid.UUID(str(value))
            except ValueError:
                return false()
        return _string_compare(cast(col, String), op, str(value), True)
    atype = path.definition.type
    if atype == "boolean":
        if op not in ("eq", "ne"):
            raise InvalidFilter(f"'{op}' is not defined for boolean attribute '{path}'")
        return _ordered(col, op, literal(bool(value), Boolean))
    if atype == "dateTime":
        if op in ("co", "sw", "ew"):
            raise InvalidFilter(f"'{op}' is not defined for dateTime attribute '{path}'")
        return _ordered(col, op, value)
    if not isinstance(value, str):
        return false()
    return _string_compare(col, op, value, path.definition.case_exact)


def _column_present(col: Any, path: d.AttrPath) -> ColumnElement[bool]:
    if isinstance(col.type, String):
        return and_(col.is_not(None), col != "")
    return col.is_not(None)


# ------------------------------------------------------------------------- JSONB fallback


def _json_leaf_compare(
    path: d.AttrPath, elem: Any, node: Compare
) -> ColumnElement[bool]:
    """Compare one JSONB value ``elem`` (the leaf) with the node's value."""
    op, value = node.op, node.value
    atype = path.definition.type
    if value is None:
        present = _json_present(elem)
        return not_(present) if op == "eq" else present
    if atype == "boolean":
        if op not in ("eq", "ne"):
            raise InvalidFilter(f"'{op}' is not defined for boolean attribute '{path}'")
        cond = elem == type_coerce(literal(bool(value), Boolean), JSONB)
        typed = func.jsonb_typeof(elem) == "boolean"
        return and_(typed, cond if op == "eq" else not_(cond))
    if atype in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return false()
        typed = func.jsonb_typeof(elem) == "number"
        number = cast(_json_text(elem), Numeric)
        return and_(typed, _ordered(number, op, literal(value, Numeric)))
    text_value = _json_text(elem)
    typed = func.jsonb_typeof(elem) == "string"
    if atype == "dateTime":
        return and_(typed, _ordered(cast(text_value, _timestamptz()), op, value))
    if not isinstance(value, str):
        return false()
    return and_(typed, _string_compare(text_value, op, value, path.definition.case_exact))


def _timestamptz() -> Any:
    from sqlalchemy import DateTime

    return DateTime(timezone=True)


def _json_text(elem: Any) -> Any:
    """The text of a JSONB scalar (``#>> '{}'``): a string without its quotes."""
    return elem.op("#>>", return_type=Text)(literal_column("'{}'::text[]"))


# Constants, not parameters: a bound Python string would be adapted as a JSON *string*.
_JSON_EMPTY_STRING = literal_column("'\"\"'::jsonb", JSONB)
_JSON_EMPTY_ARRAY = literal_column("'[]'::jsonb", JSONB)
_JSON_EMPTY_OBJECT = literal_column("'{}'::jsonb", JSONB)


def _json_present(elem: Any) -> ColumnElement[bool]:
    return and_(
        elem.is_not(None),
        func.jsonb_typeof(elem) != "null",
        elem != _JSON_EMPTY_STRING,
        elem != _JSON_EMPTY_ARRAY,
        elem != _JSON_EMPTY_OBJECT,
    )


def _top_json(model: type, path: d.AttrPath) -> Any:
    """The JSONB value of the top-level attribute of ``path`` in ``model.attrs``."""
    attrs = model.attrs  # type: ignore[attr-defined]
    if path.extension:
        return attrs[path.schema_id][path.attribute]
    return attrs[path.attribute]


def _elements(top: Any) -> Any:
    """Rows of the elements of a multi-valued JSONB attribute (empty if not an array)."""
    arr = func.coalesce(
        # lax '$[*]' turns a non-array into a one-element array and NULL stays NULL
        func.jsonb_path_query_array(top, literal_column("'$[*]'::jsonpath")),
        _JSON_EMPTY_ARRAY,
    )
    return func.jsonb_array_elements(arr).table_valued(column("value", JSONB)).alias("elem")


def _json_path_condition(
    model: type, path: d.AttrPath, leaf: Callable[[Any], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """``leaf`` applied to each value of ``path`` (any value matches)."""
    top = _top_json(model, path)
    if not path.parent.multi_valued:
        value = top if path.sub_attribute is None else top[path.sub_attribute]
        return leaf(value)
    elems = _elements(top)
    value = elems.c.value if path.sub_attribute is None else elems.c.value[path.sub_attribute]
    return exists(select(literal(1)).select_from(elems).where(leaf(value)))


# ------------------------------------------------------------------------------ compiler


class _Compiler:
    def __init__(self, mapping: ResourceMapping) -> None:
        self.mapping = mapping
        self.model = mapping.model

    def compile(self, node: Node, element: Any = None, vp: d.AttrPath | None = None) -> Any:
        if isinstance(node, And):
            return and_(self.compile(node.left, element, vp), self.compile(node.right, element, vp))
        if isinstance(node, Or):
            return or_(self.compile(node.left, element, vp), self.compile(node.right, element, vp))
        if isinstance(node, Not):
            # Two-valued NOT: an absent attribute makes the inner NULL, and NOT NULL is NULL.
            return not_(func.coalesce(self.compile(node.node, element, vp), false()))
        if isinstance(node, ValuePath):
            return self.value_path(node)
        if isinstance(node, Present | Compare):
            if element is not None and vp is not None:
                return self.element_leaf(node, element)
            return self.leaf(node)
        raise InvalidFilter(f"Unsupported filter node {type(node).__name__}")

    def leaf(self, node: Compare | Present) -> Any:
        path = node.path
        key = _key(path)
        if isinstance(node, Compare) and node.value is None and key not in self.mapping.special:
            # `eq null` is "no value present" over ALL values of a multi-valued attribute,
            # not "some value absent": compile through `pr`.
            present = self.leaf(Present(path))
            return not_(func.coalesce(present, false())) if node.op == "eq" else present
        if key in self.mapping.special:
            return self.mapping.special[key](node)
        if key in self.mapping.columns:
            col = self.mapping.columns[key]
            if isinstance(node, Present):
                return _column_present(col, path)
            return _column_compare(path, col, node)
        if (
            path.attribute == "emails"
            and self.model is User
            and isinstance(node, Compare)
            and node.op == "eq"
            and path.sub_attribute in (None, "value")
            and isinstance(node.value, str)
        ):
            return _has_email(node.value)
        if (self.model is User and key == (U, "active", None) and isinstance(node, Compare)
                and node.op == "eq" and node.value is False):
            # The column is false exactly when the stored attribute is (a user sent without
            # "active" is active): ix_users_inactive serves this where the JSON reads everyone.
            return User.active.is_(False)
        if isinstance(node, Present):
            return _json_path_condition(self.model, path, _json_present)
        return _json_path_condition(self.model, path, lambda v: _json_leaf_compare(path, v, node))

    def element_leaf(self, node: Compare | Present, element: Any) -> Any:
        path = node.path
        value = element if path.sub_attribute is None else element[path.sub_attribute]
        if isinstance(node, Present):
            return _json_present(value)
        return _json_leaf_compare(path, value, node)

    def value_path(self, node: ValuePath) -> Any:
        attr = node.attr
        if (attr.schema_id, attr.attribute, None) in self.mapping.special:
            # A relation (members, groups): `members[value eq "x" or value eq "y"]` is the
            # same as the or-ed leaves; a conjunction would need one element to match all.
            if not all(isinstance(n, Compare | Present) for n in _disjuncts(node.filter)):
                raise InvalidFilter(f"'{attr}[...]' supports only 'or'-ed comparisons")
            return self.compile(node.filter)
        top = _top_json(self.model, attr)
        if not attr.parent.multi_valued:
            return self.compile(node.filter, top, attr)
        elems = _elements(top)
        inner = self.compile(node.filter, elems.c.value, attr)
        condition = exists(select(literal(1)).select_from(elems).where(inner))
        prefilter = self._email_prefilter(node)
        return and_(prefilter, condition) if prefilter is not None else condition

    def _email_prefilter(self, node: ValuePath) -> Any:
        """``emails[... value eq "x" ...]``: narrow with the GIN index before the EXISTS."""
        if self.model is not User or node.attr.attribute != "emails":
            return None
        for part in _conjuncts(node.filter):
            if (
                isinstance(part, Compare)
                and part.op == "eq"
                and part.path.sub_attribute == "value"
                and isinstance(part.value, str)
            ):
                return _has_email(part.value)
        return None


def _has_email(value: str) -> _CE[bool]:
    """One of the user's emails is ``value`` (emails are caseExact=false), by the GIN index on
    ``emails_lower``. The matching ids are read first, in an InitPlan: as a plain condition,
    PostgreSQL (which keeps no statistics for array elements that are all unique) guessed that
    0.5 % of the users match, and walked the organization in page order to fill a page: 230 ms
    at 300,000 users against 0.07 (tests/integration/test_planner.py checks the plan)."""
    other = aliased(User)
    matching = select(other.id).where(
        other.emails_lower.contains(cast([value.lower()], ARRAY(Text))))
    return User.id == any_(func.array(matching.scalar_subquery()))


def _disjuncts(node: Node) -> list[Node]:
    if isinstance(node, Or):
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def compile_filter(node: Node, rtype: d.ResourceType) -> _CE[bool]:
    """The SQL condition equivalent to ``filter.matches(node, ...)`` for ``rtype``'s rows."""
    return _Compiler(MAPPINGS[rtype.name]).compile(node)


def sort_key(path: d.AttrPath, rtype: d.ResourceType, descending: bool) -> list[Any]:
    """ORDER BY terms for ``sortBy`` (RFC 7644 §3.4.2.3: multi-valued sort by the primary or
    first value; absent values sort last ascending)."""
    mapping = MAPPINGS[rtype.name]
    key = _key(path)
    col = mapping.sort_columns.get(key) or mapping.columns.get(key)
    if col is None:
        top = _top_json(mapping.model, path)
        if path.parent.multi_valued:
            top = top[0]
        value = top if path.sub_attribute is None else top[path.sub_attribute]
        col = _json_text(value)
    elif path.definition.type == "string" and not path.definition.case_exact:
        col = func.lower(col)
    if path.definition.type == "string":
        if isinstance(col.type, Uuid):  # ``id`` is a uuid column: sort its text form
            col = cast(col, Text)
        col = col.collate("C")
    return [col.desc().nulls_last() if descending else col.asc().nulls_last()]


__all__ = ["MAPPINGS", "ResourceMapping", "compile_filter", "sort_key", "true"]
