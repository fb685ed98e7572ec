"""RFC 7644 §3.5.2 PATCH applied to a canonical resource dict (as made by
``definitions.canonicalize``: core attributes at the top, extension attributes under their URN).

Pure: imports neither Flask nor SQLAlchemy. ``apply_patch`` never mutates its input and returns
``(new_resource, Changes)``. When the PATCH changes nothing, ``new_resource == resource`` (so the
caller can skip the write and keep ``meta.version``/``lastModified``) and ``Changes.any`` is false.

What is not in the dict
-----------------------
* ``password`` (writeOnly, returned never) is never written to the dict: the new plaintext is
  ``Changes.password`` (None = unchanged). Removing a password is refused (``Mutability``).
* Group ``members`` are never read from nor written to the dict: member operations are folded
  into ``Changes.members_added`` / ``members_removed`` / ``members_replaced`` (net effect of all
  operations, in order; see ``Changes``) so the store can apply them with set operations in SQL.
  Supported: add/replace/remove on path ``members`` (also path-less ``{"members": [...]}``),
  ``remove`` with a ``value`` list (Entra), and ``remove`` on ``members[value eq "x"]`` (also
  ``or``-ed ``value eq`` clauses, Okta/Entra). Removing a non-member is not ``noTarget`` (the
  dict does not know the members; IdPs expect idempotent removal).

Decisions where RFC 7644 or the IdPs are ambiguous
--------------------------------------------------
* Path-less ``add``/``replace``: keys may be attribute names, dotted paths, URN-qualified paths or
  an extension URN holding an object; readOnly attributes (``id``, ``meta``, ``schemas``,
  ``groups``, the workteam extension, ``manager.displayName``) are silently ignored (Okta O11),
  unknown keys whose value is null are ignored, other unknown keys are ``invalidPath``. An
  explicit ``path`` naming a readOnly attribute is ``mutability``.
* ``add`` and ``replace`` on a single-valued complex attribute merge the given sub-attributes
  (RFC 7644 §3.5.2.1/§3.5.2.3). ``manager`` is replaced as a whole by ``normalise_manager``.
* ``add``/``replace`` on a value-filter path that matches nothing creates the entry from the
  filter's ``eq`` clauses plus the value (Entra E6); this needs a filter that is a conjunction of
  ``eq`` comparisons, otherwise ``noTarget``. ``replace`` of matched entries without a
  sub-attribute replaces each entry with the value, keeping the filter's ``eq`` clauses (so
  ``emails[type eq "work"]`` stays a work email); ``add`` merges into them.
* ``remove`` on a value-filter path matching nothing is ``noTarget``; ``remove`` of an absent
  attribute (no filter) is a no-op. ``remove`` on a multi-valued attribute with a ``value`` list
  removes only the entries whose ``value`` sub-attribute equals one of the given values (Entra,
  MicrosoftDocs/azure-docs#30826), never all; ``"value": null`` means no value (removes all).
* ``add``/``replace`` of ``attr.sub`` on a multi-valued attribute without a filter sets ``sub``
  on every entry (or creates one entry when there is none); ``remove`` removes it from every
  entry.
* Removing (or setting to null/"") a required attribute (``userName``, Group ``displayName``)
  is ``invalidValue`` ("a required value was missing", RFC 7644 Table 9).
* Immutable attributes may be set when unassigned; changing or removing an existing value is
  ``mutability``.
* Booleans sent as strings (Entra ``"False"``) are converted; other wrong types are
  ``invalidValue``. A null value in add/replace unassigns the attribute.
* More than ``max_operations`` operations: ``invalidValue`` (``tooMany`` is for filters).
* Primary: after each operation at most one entry of a multi-valued attribute has
  ``primary: true``; the last one written wins, the others are set to ``false``.
* Every error detail starts with ``Operations[i] (op path)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models import jsoncodec
from web.scim.definitions import (
    ENTERPRISE_USER_SCHEMA_ID,
    Attribute,
    AttrPath,
    ResourceType,
    Schema,
    canonicalize,
    resolve_path,
    resolve_schema,
)
from web.scim.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from web.scim.filter import (
    And,
    Compare,
    Node,
    Or,
    PatchPath,
    element_matches,
    parse_datetime,
    parse_path,
)

__all__ = ["PATCH_OP_SCHEMA", "Changes", "apply_patch", "normalise_manager"]

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_OPS = ("add", "remove", "replace")


@dataclass
class Changes:
    """What a PATCH changed besides the resource dict.

    ``password``: the new plaintext password, or None when unchanged.

    Members (Groups only), the net effect of all operations in order:
    ``members_replaced`` is None or the complete new member list (values, in order); when it is
    None the store applies ``members_removed`` then ``members_added`` (the two never overlap);
    when it is not None both lists are empty.
    """

    password: str | None = None
    members_added: list[str] = field(default_factory=list)
    members_removed: list[str] = field(default_factory=list)
    members_replaced: list[str] | None = None

    @property
    def members_changed(self) -> bool:
        return bool(self.members_added or self.members_removed) or (
            self.members_replaced is not None
        )

    @property
    def any(self) -> bool:
        """True if something outside the resource dict changes (password or members)."""
        return self.password is not None or self.members_changed


def normalise_manager(value: Any) -> dict | None:
    """The enterprise ``manager`` as ``{"value": id}``, or None (unassigned).

    Accepts every shape Entra and Okta send (reference doc E9): a plain id string,
    ``{"value": id}`` (keys case-insensitive, ``$ref``/``displayName`` dropped: they are
    server-computed), a list of one such object, null, ``""`` or ``{"value": null}``.
    Raises ``InvalidValue`` otherwise.
    """
    if isinstance(value, list):
        if not value:
            return None
        if len(value) > 1:
            raise InvalidValue("manager: expected a single manager, got a list of several")
        value = value[0]
    if value is None:
        return None
    if isinstance(value, dict):
        found = [v for k, v in value.items() if isinstance(k, str) and k.lower() == "value"]
        value = found[-1] if found else None
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidValue("manager: expected a user id or an object with a 'value'")
    text = str(value).strip()
    return {"value": text} if text else None


# --------------------------------------------------------------------------- helpers


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _strip(value: Any) -> Any:
    """``value`` without null / [] / {} members, recursively (for no-op detection)."""
    if isinstance(value, dict):
        out = {k: _strip(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _get_ci(data: dict, key: str, default: Any = None) -> Any:
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return default


def _eq_clauses(node: Node) -> dict[str, Any] | None:
    """``{sub: value}`` when ``node`` is a conjunction of ``eq`` comparisons, else None."""
    if isinstance(node, Compare):
        if node.op != "eq" or node.value is None or node.path.sub_attribute is None:
            return None
        if not isinstance(node.value, str | bool | int | float):
            return None
        return {node.path.sub_attribute: node.value}
    if isinstance(node, And):
        left, right = _eq_clauses(node.left), _eq_clauses(node.right)
        if left is None or right is None:
            return None
        for k, v in right.items():
            if k in left and left[k] != v:
                return None
        return {**left, **right}
    return None


def _member_filter_values(node: Node) -> list[str] | None:
    """The ids of a members filter made of ``value eq "id"`` clauses joined by ``or``."""
    if isinstance(node, Compare):
        if node.op == "eq" and node.path.sub_attribute == "value" and isinstance(node.value, str):
            return [node.value]
        return None
    if isinstance(node, Or):
        left, right = _member_filter_values(node.left), _member_filter_values(node.right)
        return None if left is None or right is None else left + right
    return None


def _same(attr: Attribute, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and not attr.case_exact:
        return a.lower() == b.lower()
    return a == b and type(a) is type(b)


# --------------------------------------------------------------------------- the engine


class _Patcher:
    def __init__(self, resource: dict, rtype: ResourceType) -> None:
        self.rtype = rtype
        self.res: dict = canonicalize(rtype, jsoncodec.clone(resource))
        self.changes = Changes()
        self.is_group = rtype.name == "Group"
        # ordered sets for members
        self.m_added: dict[str, None] = {}
        self.m_removed: dict[str, None] = {}
        self.m_replaced: dict[str, None] | None = None

    # ---- entry point per operation
    def operation(self, index: int, operation: Any) -> None:
        if not isinstance(operation, dict):
            raise InvalidSyntax(f"Operations[{index}]: expected an object")
        op_raw = _get_ci(operation, "op")
        if not isinstance(op_raw, str) or op_raw.lower() not in _OPS:
            raise InvalidSyntax(
                f"Operations[{index}]: 'op' must be one of add, remove, replace (got {op_raw!r})"
            )
        op = op_raw.lower()
        has_path = any(isinstance(k, str) and k.lower() == "path" for k in operation)
        path = _get_ci(operation, "path")
        has_value = any(isinstance(k, str) and k.lower() == "value" for k in operation)
        value = _get_ci(operation, "value")
        if has_path and path is not None and not isinstance(path, str):
            raise InvalidPath(f"Operations[{index}] ({op}): 'path' must be a string")
        if isinstance(path, str) and not path.strip():
            path = None
        where = f"Operations[{index}] ({op} {path})" if path else f"Operations[{index}] ({op})"
        try:
            if path is None:
                if op == "remove":
                    raise NoTarget(f"{where}: 'remove' requires a 'path'")
                if not isinstance(value, dict):
                    raise InvalidValue(
                        f"{where}: without a 'path' the value must be an object of attributes, "
                        f"got {_type_name(value)}"
                    )
                self.pathless(index, op, value, None)
                return
            if op != "remove" and not has_value:
                raise InvalidValue(f"{where}: '{op}' requires a 'value'")
            schema = resolve_schema(self.rtype, path.strip())
            if schema is not None and schema is not self.rtype.schema:
                self.whole_extension(index, where, op, schema, value)
                return
            try:
                pp = parse_path(path, self.rtype)
            except (InvalidPath, InvalidFilter) as exc:
                raise type(exc)(f"{where}: {exc.detail}") from None
            self.apply(where, op, pp, value, explicit=True, remove_value=has_value)
        except ScimError as exc:
            if exc.detail.startswith(f"Operations[{index}]"):
                raise
            raise type(exc)(f"{where}: {exc.detail}") from None

    # ---- path-less add/replace
    def pathless(self, index: int, op: str, value: dict, schema: Schema | None) -> None:
        for key, sub_value in value.items():
            if not isinstance(key, str) or not key.strip():
                raise InvalidPath(f"Operations[{index}] ({op}): invalid attribute name {key!r}")
            where = f"Operations[{index}] ({op} {key})"
            if key.lower() == "schemas":
                continue  # readOnly, also inside an extension object (scim2-tester sends it)
            if schema is None and key.lower().startswith("urn:"):
                ext = resolve_schema(self.rtype, key)
                if ext is not None:
                    if ext is self.rtype.schema:
                        if not isinstance(sub_value, dict):
                            raise InvalidValue(f"{where}: expected an object")
                        self.pathless(index, op, sub_value, ext)
                    else:
                        self.whole_extension(index, where, op, ext, sub_value)
                    continue
            full = f"{schema.id}:{key}" if schema is not None else key
            try:
                attr_path = resolve_path(self.rtype, full)
            except InvalidPath:
                if sub_value is None:
                    continue  # Entra's "department": null and the like
                raise InvalidPath(f"{where}: unknown attribute '{key}'") from None
            try:
                self.apply(where, op, PatchPath(attr_path), sub_value, explicit=False)
            except ScimError as exc:
                if exc.detail.startswith(where):
                    raise
                raise type(exc)(f"{where}: {exc.detail}") from None

    def whole_extension(self, index: int, where: str, op: str, schema: Schema, value: Any) -> None:
        """Path or path-less key that is an extension URN: the extension object as a whole."""
        if op == "remove":
            writable = [a for a in schema.attributes if a.mutability != "readOnly"]
            if not writable:
                raise Mutability(f"{where}: '{schema.id}' is read-only")
            container = self.res.get(schema.id)
            if isinstance(container, dict):
                for attr in writable:
                    container.pop(attr.name, None)
                if not container:
                    del self.res[schema.id]
            return
        if value is None:
            return
        if not isinstance(value, dict):
            raise InvalidValue(f"{where}: expected an object of '{schema.id}' attributes")
        self.pathless(index, op, value, schema)

    # ---- containers
    def container(self, path: AttrPath, create: bool) -> dict | None:
        if not path.extension:
            return self.res
        c = self.res.get(path.schema_id)
        if not isinstance(c, dict):
            if not create:
                return None
            c = self.res[path.schema_id] = {}
        return c

    def drop_if_empty(self, path: AttrPath) -> None:
        c = self.container(path, create=False)
        if c is None:
            return
        if path.attribute in c and _empty(c[path.attribute]):
            del c[path.attribute]
        if path.extension and not c:
            self.res.pop(path.schema_id, None)

    # ---- coercion
    def coerce_simple(self, attr: Attribute, value: Any, label: str) -> Any:
        if value is None:
            return None
        t = attr.type
        if t == "boolean":
            found = _as_boolean(value)
            if found is None:
                raise InvalidValue(f"{label}: expected a boolean, got {_type_name(value)}")
            return found
        if t in ("string", "reference", "binary", "dateTime"):
            if not isinstance(value, str):
                raise InvalidValue(f"{label}: expected a string, got {_type_name(value)}")
            if t == "dateTime":
                if parse_datetime(value) is None:
                    raise InvalidValue(f"{label}: expected a dateTime, got {value!r}")
            return value
        if t == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValue(f"{label}: expected an integer, got {_type_name(value)}")
            return value
        if t == "decimal":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidValue(f"{label}: expected a number, got {_type_name(value)}")
            return value
        raise InvalidValue(f"{label}: unsupported attribute type {t}")  # pragma: no cover

    def coerce_item(self, attr: Attribute, value: Any, label: str) -> dict:
        """One complex value: canonical sub-attribute keys, coerced, readOnly/null dropped."""
        if not isinstance(value, dict):
            raise InvalidValue(f"{label}: expected an object, got {_type_name(value)}")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attr.sub(key) if isinstance(key, str) else None
            if sub is None:
                if sub_value is None:
                    continue
                raise InvalidValue(f"{label}: unknown sub-attribute {key!r} of '{attr.name}'")
            if sub.mutability == "readOnly" or sub_value is None:
                continue
            out[sub.name] = self.coerce_simple(sub, sub_value, f"{label}.{sub.name}")
        return out

    def coerce_multi(self, attr: Attribute, value: Any, label: str) -> list[dict]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise InvalidValue(f"{label}: expected a list of objects, got {_type_name(value)}")
        items = [self.coerce_item(attr, v, label) for v in value]
        return [i for i in items if i]

    # ---- dispatch
    def apply(
        self,
        where: str,
        op: str,
        pp: PatchPath,
        value: Any,
        *,
        explicit: bool,
        remove_value: bool = False,
    ) -> None:
        path = pp.attr
        parent = path.parent
        target = pp.sub.definition if pp.sub is not None else path.definition
        if self.is_group and path.attribute == "members" and not path.extension:
            self.members(where, op, pp, value, remove_value)
            return
        if parent.mutability == "readOnly" or target.mutability == "readOnly":
            if explicit:
                raise Mutability(f"{where}: attribute '{pp}' is read-only")
            return
        if parent.name == "password" and not path.extension:
            self.password(where, op, value)
            return
        if (
            path.extension
            and path.schema_id == ENTERPRISE_USER_SCHEMA_ID
            and parent.name == "manager"
            and pp.filter is None
        ):
            self.manager(where, op, path, value)
            return
        if pp.filter is not None:
            self.filtered(where, op, pp, value, remove_value)
        elif parent.multi_valued:
            self.multi(where, op, path, value, remove_value)
        elif path.sub_attribute is not None:
            self.set_sub(where, op, path, value)
        elif parent.is_complex:
            self.complex_single(where, op, path, value)
        else:
            self.simple(where, op, path, value)

    # ---- special members
    def password(self, where: str, op: str, value: Any) -> None:
        if op == "remove" or value is None:
            raise Mutability(f"{where}: the password cannot be removed, only replaced")
        if not isinstance(value, str) or not value:
            raise InvalidValue(f"{where}: expected a non-empty string, got {_type_name(value)}")
        self.changes.password = value

    def manager(self, where: str, op: str, path: AttrPath, value: Any) -> None:
        c = self.container(path, create=False)
        current = c.get("manager") if c is not None else None
        if path.sub_attribute == "$ref":
            return  # server-computed from manager.value
        if op == "remove":
            if c is not None and "manager" in c:
                del c["manager"]
                self.drop_if_empty(path)
            return
        try:
            new = normalise_manager(value)
        except InvalidValue as exc:
            raise InvalidValue(f"{where}: {exc.detail}") from None
        if new is None:
            if c is not None and "manager" in c:
                del c["manager"]
                self.drop_if_empty(path)
            return
        if isinstance(current, dict) and current.get("value") == new["value"]:
            return  # unchanged: keep the stored object (with its displayName/$ref)
        self.container(path, create=True)["manager"] = new  # type: ignore[index]

    def members(self, where: str, op: str, pp: PatchPath, value: Any, remove_value: bool) -> None:
        if pp.sub is not None or pp.attr.sub_attribute is not None:
            raise Mutability(f"{where}: sub-attributes of members are immutable")
        if pp.filter is not None:
            if op != "remove":
                raise InvalidPath(f"{where}: only 'remove' supports a filter on members")
            ids = _member_filter_values(pp.filter)
            if ids is None:
                raise InvalidFilter(
                    f"{where}: a members filter must be 'value eq \"id\"' (optionally or-ed)"
                )
            for member in ids:
                self.member_remove(member)
            return
        if op == "remove":
            if remove_value and value is not None:
                for member in self.member_values(where, value):
                    self.member_remove(member)
            else:
                self.m_replaced, self.m_added, self.m_removed = {}, {}, {}
            return
        members = self.member_values(where, value)
        if op == "replace":
            self.m_replaced, self.m_added, self.m_removed = dict.fromkeys(members), {}, {}
            return
        for member in members:
            if self.m_replaced is not None:
                self.m_replaced[member] = None
            else:
                self.m_removed.pop(member, None)
                self.m_added[member] = None

    def member_remove(self, member: str) -> None:
        if self.m_replaced is not None:
            self.m_replaced.pop(member, None)
        else:
            self.m_added.pop(member, None)
            self.m_removed[member] = None

    def member_values(self, where: str, value: Any) -> list[str]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            member = _get_ci(item, "value") if isinstance(item, dict) else item
            if not isinstance(member, str) or not member.strip():
                raise InvalidValue(
                    f"{where}: each member must be an object with a non-empty 'value', "
                    f"got {_type_name(member)}"
                )
            out.append(member.strip())
        return out

    # ---- plain attributes
    def check_immutable(self, where: str, attr: Attribute, current: Any, new: Any) -> None:
        if attr.mutability == "immutable" and current is not None and current != new:
            raise Mutability(f"{where}: '{attr.name}' is immutable and already has a value")

    def check_required(self, where: str, attr: Attribute, new: Any, top_level: bool) -> None:
        if top_level and attr.required and (new is None or new == ""):
            raise InvalidValue(f"{where}: '{attr.name}' is required and cannot be removed")

    def simple(self, where: str, op: str, path: AttrPath, value: Any) -> None:
        attr = path.definition
        c = self.container(path, create=False)
        current = c.get(attr.name) if c is not None else None
        new = None if op == "remove" else self.coerce_simple(attr, value, where)
        self.check_required(where, attr, new, True)
        if op == "remove" and current is None:
            return
        self.check_immutable(where, attr, current, new)
        if new is None:
            if c is not None:
                c.pop(attr.name, None)
                self.drop_if_empty(path)
            return
        self.container(path, create=True)[attr.name] = new  # type: ignore[index]

    def complex_single(self, where: str, op: str, path: AttrPath, value: Any) -> None:
        attr = path.definition
        c = self.container(path, create=False)
        if op == "remove" or value is None:
            if c is not None and attr.name in c:
                for sub in attr.sub_attributes:
                    current = c[attr.name].get(sub.name) if isinstance(c[attr.name], dict) else None
                    self.check_immutable(where, sub, current, None)
                del c[attr.name]
                self.drop_if_empty(path)
            return
        if not isinstance(value, dict):
            raise InvalidValue(f"{where}: expected an object, got {_type_name(value)}")
        new = self.coerce_item(attr, value, where)
        nulls = [
            s.name
            for k, v in value.items()
            if v is None and isinstance(k, str) and (s := attr.sub(k)) is not None
        ]
        c = self.container(path, create=True)
        assert c is not None
        current = c.get(attr.name)
        merged = dict(current) if isinstance(current, dict) else {}
        for name in nulls:
            merged.pop(name, None)
        for name, sub_value in new.items():
            definition = attr.sub(name)
            assert definition is not None
            self.check_immutable(where, definition, merged.get(name), sub_value)
            merged[name] = sub_value
        c[attr.name] = merged
        self.drop_if_empty(path)

    def set_sub(self, where: str, op: str, path: AttrPath, value: Any) -> None:
        """``name.familyName`` (sub-attribute of a single-valued complex attribute)."""
        sub = path.definition
        c = self.container(path, create=False)
        current_parent = c.get(path.attribute) if c is not None else None
        current = current_parent.get(sub.name) if isinstance(current_parent, dict) else None
        new = None if op == "remove" else self.coerce_simple(sub, value, where)
        if new is None and current is None:
            return
        self.check_immutable(where, sub, current, new)
        if new is None:
            assert isinstance(current_parent, dict)
            current_parent.pop(sub.name, None)
            self.drop_if_empty(path)
            return
        c = self.container(path, create=True)
        assert c is not None
        parent = c.get(path.attribute)
        if not isinstance(parent, dict):
            parent = c[path.attribute] = {}
        parent[sub.name] = new

    # ---- multi-valued attributes
    def current_list(self, path: AttrPath) -> list:
        c = self.container(path, create=False)
        current = c.get(path.attribute) if c is not None else None
        if isinstance(current, list):
            return current
        return [current] if isinstance(current, dict) else []

    def store_list(self, path: AttrPath, items: list, written: list[int]) -> None:
        items = _fix_primary(items, written)
        if not items:
            c = self.container(path, create=False)
            if c is not None:
                c.pop(path.attribute, None)
                self.drop_if_empty(path)
            return
        self.container(path, create=True)[path.attribute] = items  # type: ignore[index]

    def multi(self, where: str, op: str, path: AttrPath, value: Any, remove_value: bool) -> None:
        attr = path.parent
        items = [dict(i) if isinstance(i, dict) else i for i in self.current_list(path)]
        if path.sub_attribute is not None:  # emails.value without filter: every entry
            sub = path.definition
            if op == "remove":
                touched = False
                for item in items:
                    if isinstance(item, dict) and sub.name in item:
                        self.check_immutable(where, sub, item[sub.name], None)
                        del item[sub.name]
                        touched = True
                if touched:
                    self.store_list(path, [i for i in items if i != {}], [])
                return
            new = self.coerce_simple(sub, value, where)
            dicts = [i for i in items if isinstance(i, dict)]
            if not dicts:
                if new is None:
                    return
                self.store_list(path, [{sub.name: new}], [0])
                return
            written = []
            for n, item in enumerate(items):
                if isinstance(item, dict):
                    self.check_immutable(where, sub, item.get(sub.name), new)
                    if new is None:
                        item.pop(sub.name, None)
                    else:
                        item[sub.name] = new
                        written.append(n)
            self.store_list(path, [i for i in items if i != {}], written)
            return
        if op == "remove":
            if remove_value and value is not None:
                self.remove_values(where, path, items, value)
            elif items:
                self.store_list(path, [], [])
            return
        new_items = [] if value is None else self.coerce_multi(attr, value, where)
        if op == "replace":
            self.store_list(path, new_items, list(range(len(new_items))))
            return
        written = []
        for item in new_items:
            if item in items:
                if item.get("primary") is True:
                    written.append(items.index(item))
                continue
            items.append(item)
            written.append(len(items) - 1)
        if written:
            self.store_list(path, items, written)

    def remove_values(self, where: str, path: AttrPath, items: list, value: Any) -> None:
        attr = path.parent
        given = value if isinstance(value, list) else [value]
        value_sub = attr.sub("value")
        keep = list(items)
        for g in given:
            if isinstance(g, dict):
                g_item = self.coerce_item(attr, g, where)
                wanted = g_item.get("value")
                if wanted is None or value_sub is None:
                    keep = [i for i in keep if i != g_item]
                    continue
            elif isinstance(g, str) and value_sub is not None:
                wanted = g
            else:
                raise InvalidValue(
                    f"{where}: expected objects with a 'value' to remove, got {_type_name(g)}"
                )
            assert value_sub is not None
            keep = [
                i
                for i in keep
                if not (isinstance(i, dict) and _same(value_sub, i.get("value"), wanted))
            ]
        if len(keep) != len(items):
            self.store_list(path, keep, [])

    def filtered(self, where: str, op: str, pp: PatchPath, value: Any, remove_value: bool) -> None:
        path, flt = pp.attr, pp.filter
        assert flt is not None
        attr = path.parent
        single = not attr.multi_valued
        items = [dict(i) if isinstance(i, dict) else i for i in self.current_list(path)]
        hits = [n for n, i in enumerate(items) if element_matches(flt, path, i)]
        sub = pp.sub.definition if pp.sub is not None else None
        if op == "remove":
            if not hits:
                raise NoTarget(f"{where}: no value matches the filter")
            if sub is None:
                for n in hits:
                    for s in attr.sub_attributes:
                        self.check_immutable(where, s, items[n].get(s.name), None)
                keep = [i for n, i in enumerate(items) if n not in hits]
            else:
                for n in hits:
                    self.check_immutable(where, sub, items[n].get(sub.name), None)
                    items[n].pop(sub.name, None)
                keep = [i for i in items if i != {}]
            self.store_filtered(path, keep, [], single)
            return
        if sub is not None:
            new_value = self.coerce_simple(sub, value, where)
            if not hits:
                if new_value is None:
                    return
                base = self.eq_base(where, flt)
                base[sub.name] = new_value
                items.append(base)
                self.store_filtered(path, items, [len(items) - 1], single)
                return
            for n in hits:
                self.check_immutable(where, sub, items[n].get(sub.name), new_value)
                if new_value is None:
                    items[n].pop(sub.name, None)
                else:
                    items[n][sub.name] = new_value
            written = hits if new_value is not None else []
            self.store_filtered(path, [i for i in items if i != {}], written, single)
            return
        if value is None:
            new_item: dict = {}
        else:
            new_item = self.coerce_item(attr, value, where)
        if not hits:
            base = self.eq_base(where, flt)
            base.update(new_item)
            items.append(base)
            self.store_filtered(path, items, [len(items) - 1], single)
            return
        eq = _eq_clauses(flt) or {}
        for n in hits:
            merged = dict(items[n]) if op == "add" else {**eq}
            merged.update(new_item)
            for s in attr.sub_attributes:
                self.check_immutable(where, s, items[n].get(s.name), merged.get(s.name))
            items[n] = merged
        self.store_filtered(path, [i for i in items if i != {}], hits, single)

    def eq_base(self, where: str, flt: Node) -> dict:
        base = _eq_clauses(flt)
        if base is None:
            raise NoTarget(
                f"{where}: no value matches the filter, and it is not a conjunction of 'eq' "
                "comparisons a new value could be built from"
            )
        return dict(base)

    def store_filtered(self, path: AttrPath, items: list, written: list[int], single: bool) -> None:
        if not single:
            self.store_list(path, items, written)
            return
        c = self.container(path, create=bool(items))
        if not items:
            if c is not None:
                c.pop(path.attribute, None)
                self.drop_if_empty(path)
            return
        assert c is not None
        c[path.attribute] = items[-1]

    # ---- result
    def result(self, original: dict) -> tuple[dict, Changes]:
        if self.m_replaced is not None:
            self.changes.members_replaced = list(self.m_replaced)
        else:
            self.changes.members_added = list(self.m_added)
            self.changes.members_removed = list(self.m_removed)
        if _strip(self.res) == _strip(canonicalize(self.rtype, original)):
            return jsoncodec.clone(original), self.changes
        return self.res, self.changes


def _fix_primary(items: list, written: list[int]) -> list:
    """At most one ``primary: true``: the last written entry with it, else the last one."""
    flagged = [n for n, i in enumerate(items) if isinstance(i, dict) and i.get("primary") is True]
    if len(flagged) <= 1:
        return items
    written_flagged = [n for n in written if n in flagged]
    winner = written_flagged[-1] if written_flagged else flagged[-1]
    out = list(items)
    for n in flagged:
        if n != winner:
            out[n] = {**out[n], "primary": False}
    return out


_ACTIVE_PATHS = ("active", "urn:ietf:params:scim:schemas:core:2.0:user:active")


def _as_boolean(value: Any) -> bool | None:
    """A boolean, or the strings "true"/"false" in any case (Entra sends "False"); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _is_patch_op(schemas: Any) -> bool:
    """Whether a body's ``schemas`` name the PatchOp message."""
    return isinstance(schemas, list) and any(
        isinstance(s, str) and s.lower() == PATCH_OP_SCHEMA.lower() for s in schemas
    )


def active_only(body: Any, max_operations: int) -> bool | None:
    """What a user PatchOp sets ``active`` to, when replacing (or adding) ``active`` is all it
    does: Entra's deactivation ``{"op": "Replace", "path": "active", "value": "False"}``,
    Okta's ``{"op": "replace", "value": {"active": false}}``. None for any other body, which
    ``apply_patch`` then applies (or rejects). Values are coerced as ``apply_patch`` coerces a
    boolean; the last operation wins, as there."""
    if not isinstance(body, dict) or set(map(str.lower, body)) != {"schemas", "operations"}:
        return None
    operations = _get_ci(body, "operations")
    if not _is_patch_op(_get_ci(body, "schemas")):
        return None
    if not isinstance(operations, list) or not 0 < len(operations) <= max_operations:
        return None
    active = None
    for operation in operations:
        if not isinstance(operation, dict) or not all(isinstance(k, str) for k in operation):
            return None
        fields = {k.lower(): v for k, v in operation.items()}
        op = fields.pop("op", None)
        if not isinstance(op, str) or op.lower() not in ("replace", "add") or "value" not in fields:
            return None
        value = fields.pop("value")
        path = fields.pop("path", None)
        if fields:
            return None
        if path is None:
            if not isinstance(value, dict) or len(value) != 1:
                return None
            (key, value), = value.items()
            path = key
        if not isinstance(path, str) or path.strip().lower() not in _ACTIVE_PATHS:
            return None
        active = _as_boolean(value)
        if active is None:
            return None
    return active


def apply_patch(
    resource: dict,
    body: dict,
    rtype: ResourceType,
    *,
    max_operations: int = 1000,
) -> tuple[dict, Changes]:
    """Apply a PatchOp ``body`` to the canonical ``resource`` of type ``rtype``.

    Returns ``(new_resource, changes)``; ``resource`` is not modified. If nothing changes,
    ``new_resource == resource``. Raises a ``ScimError`` subclass (``InvalidSyntax``,
    ``InvalidValue``, ``InvalidPath``, ``InvalidFilter``, ``NoTarget``, ``Mutability``) whose
    detail names the operation; the operations are all-or-nothing (the input is untouched).
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("The PATCH body must be a JSON object")
    if not _is_patch_op(_get_ci(body, "schemas")):
        raise InvalidSyntax(f"The PATCH body's 'schemas' must contain '{PATCH_OP_SCHEMA}'")
    operations = _get_ci(body, "operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("The PATCH body must have a non-empty 'Operations' list")
    if len(operations) > max_operations:
        raise InvalidValue(
            f"Too many operations: {len(operations)}, at most {max_operations} per PATCH"
        )
    if not isinstance(resource, dict):
        raise TypeError("resource must be a dict")
    patcher = _Patcher(resource, rtype)
    for index, operation in enumerate(operations):
        patcher.operation(index, operation)
    return patcher.result(resource)
