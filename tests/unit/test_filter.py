"""RFC 7644 §3.4.2.2 filters: parse, render, matches; IdP filters from the reference doc."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.scim import definitions as d
from web.scim.definitions import (
    ENTERPRISE_USER_SCHEMA_ID as ENT,
)
from web.scim.definitions import (
    GROUP_TYPE,
    USER_TYPE,
    Attribute,
    ResourceType,
    Schema,
    resolve_path,
)
from web.scim.errors import InvalidFilter, InvalidPath
from web.scim.filter import (
    And,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    element_matches,
    matches,
    parse,
    parse_datetime,
    parse_path,
    render,
)


def P(text: str, rtype: ResourceType = USER_TYPE):
    return resolve_path(rtype, text)


def f(text: str, rtype: ResourceType = USER_TYPE):
    return parse(text, rtype)


BJENSEN = {
    "schemas": [d.USER_SCHEMA_ID, ENT],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "bjensen",
    "userName": "bjensen",
    "name": {"familyName": "O'Malley", "givenName": "Barbara"},
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff590"',
    },
    ENT: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
}

JSMITH = {
    "schemas": [d.USER_SCHEMA_ID],
    "id": "c75ad752-64ae-4823-840d-ffa80929976c",
    "userName": "Jsmith",
    "userType": "Intern",
    "active": False,
    "emails": [{"value": "jsmith@example.org", "type": "home"}],
    "ims": [{"value": "js@foo.com", "type": "xmpp"}],
    "meta": {"created": "2011-05-13T04:42:34Z", "lastModified": "2012-01-01T00:00:00+01:00"},
}

# --------------------------------------------------------------------------- RFC examples

# RFC 7644 §3.4.2.2, "Example filters" (the filter=... list), with whether BJENSEN / JSMITH match.
RFC_EXAMPLES = [
    ('userName eq "bjensen"', True, False),
    ('name.familyName co "O\'Malley"', True, False),
    ('userName sw "J"', False, True),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', False, True),
    ("title pr", True, False),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False, False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True, False),
    ('title pr and userType eq "Employee"', True, False),
    ('title pr or userType eq "Intern"', True, True),
    ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', True, False),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        True,
        False,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
        False,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True, False),
    (
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        True,
        False,
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        True,
        True,
    ),
]


@pytest.mark.parametrize(
    ("text", "bjensen", "jsmith"),
    RFC_EXAMPLES,
    ids=[f"rfc7644-3.4.2.2-ex{i + 1}" for i in range(len(RFC_EXAMPLES))],
)
def test_rfc7644_examples(text, bjensen, jsmith):
    node = f(text)
    assert matches(node, BJENSEN, USER_TYPE) is bjensen
    assert matches(node, JSMITH, USER_TYPE) is jsmith
    assert f(render(node)) == node


def test_rfc_example_asts():
    assert f('userName eq "bjensen"') == Compare(P("userName"), "eq", "bjensen")
    assert f('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"') == Compare(
        P("userName"), "sw", "J"
    )
    assert f("title pr") == Present(P("title"))
    assert f('meta.lastModified gt "2011-05-13T04:42:34Z"') == Compare(
        P("meta.lastModified"), "gt", datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)
    )
    # "emails co" means emails.value (RFC 7644 §3.4.2.2 example)
    assert f('emails co "example.com"') == Compare(P("emails.value"), "co", "example.com")
    assert f('userType ne "Employee" and not (emails co "example.com")') == And(
        Compare(P("userType"), "ne", "Employee"),
        Not(Compare(P("emails.value"), "co", "example.com")),
    )
    assert f('emails[type eq "work" and value co "@example.com"]') == ValuePath(
        P("emails"),
        And(
            Compare(P("emails.type"), "eq", "work"),
            Compare(P("emails.value"), "co", "@example.com"),
        ),
    )


def test_rfc7644_3_4_3_search_example_unquoted():
    """RFC 7644 §3.4.3 search body: ``(meta.resourceType eq User) or (... eq Group)``."""
    node = f("(meta.resourceType eq User) or (meta.resourceType eq Group)")
    assert node == Or(
        Compare(P("meta.resourceType"), "eq", "User"),
        Compare(P("meta.resourceType"), "eq", "Group"),
    )
    assert matches(node, BJENSEN)
    assert not matches(node, JSMITH)  # no meta.resourceType


# --------------------------------------------------------------------------- IdP filters


def test_okta_o2_lookup_and_case_insensitive_username():
    """Okta O2 + spec test 'Username Case Sensitivity Check' (userName caseExact=false)."""
    node = f('userName eq "BJENSEN"')
    assert matches(node, BJENSEN)
    okta = f('userName eq "test.user@okta.local"')
    assert okta == Compare(P("userName"), "eq", "test.user@okta.local")


def test_entra_e1_e3_match_filters():
    assert f('userName eq "5f0a1c52-6a7e-4d5e-9b0b-0f5a3a3c9d11"').op == "eq"
    # E3 tutorial Example 1: unquoted value (Entra tolerance)
    node = f("externalId eq jyoung")
    assert node == Compare(P("externalId"), "eq", "jyoung")
    assert f('externalId eq "jyoung"') == node
    # externalId is caseExact
    assert matches(f('externalId eq "bjensen"'), BJENSEN)
    assert not matches(f('externalId eq "BJensen"'), BJENSEN)


def test_entra_emails_work_value_form():
    """Entra: ``emails[type eq "work"].value eq "x"`` (reference doc §3 rules)."""
    node = f('emails[type eq "work"].value eq "bjensen@example.com"')
    assert node == ValuePath(
        P("emails"),
        And(
            Compare(P("emails.type"), "eq", "work"),
            Compare(P("emails.value"), "eq", "bjensen@example.com"),
        ),
    )
    assert matches(node, BJENSEN)
    # the home address exists but is not the work one: same-element semantics
    assert not matches(f('emails[type eq "work"].value eq "babs@jensen.org"'), BJENSEN)
    assert matches(f('emails[type eq "home"].value eq "babs@jensen.org"'), BJENSEN)
    assert f(render(node)) == node


def test_entra_e9_manager_check_filter():
    """SCIMReferenceCode: ``id eq "<user>" and manager eq "<mgr>"`` (manager = manager.value)."""
    node = f(f'id eq "{BJENSEN["id"]}" and manager eq "26118915"')
    assert node == And(
        Compare(P("id"), "eq", BJENSEN["id"]),
        Compare(P("manager.value"), "eq", "26118915"),
    )
    assert matches(node, BJENSEN)
    assert not matches(node, JSMITH)


def test_entra_e11_group_display_name():
    node = f('displayName eq "displayName"', GROUP_TYPE)
    assert node == Compare(P("displayName", GROUP_TYPE), "eq", "displayName")
    assert matches(node, {"displayName": "DISPLAYNAME"})
    assert matches(f('members[value eq "u1"]', GROUP_TYPE), {"members": [{"value": "u1"}]})


def test_extension_attributes_bare_and_qualified():
    a = f('employeeNumber eq "701984"')
    b = f(f'{ENT}:employeeNumber eq "701984"')
    assert a == b and matches(a, BJENSEN)
    assert str(a.path) == f"{ENT}:employeeNumber"
    assert not matches(a, JSMITH)


# --------------------------------------------------------------------------- grammar


def test_precedence_not_and_or():
    a = Compare(P("userName"), "eq", "a")
    b = Compare(P("title"), "eq", "b")
    c = Compare(P("userType"), "eq", "c")
    assert f('userName eq "a" or title eq "b" and userType eq "c"') == Or(a, And(b, c))
    assert f('userName eq "a" and title eq "b" or userType eq "c"') == Or(And(a, b), c)
    assert f('(userName eq "a" or title eq "b") and userType eq "c"') == And(Or(a, b), c)
    assert f('not (userName eq "a") and title eq "b"') == And(Not(a), b)
    assert f('not (userName eq "a" or title eq "b")') == Not(Or(a, b))
    # left-associative chains
    assert f('userName eq "a" and title eq "b" and userType eq "c"') == And(And(a, b), c)
    assert f('userName eq "a" or title eq "b" or userType eq "c"') == Or(Or(a, b), c)


def test_keywords_and_operators_case_insensitive():
    assert f('userName EQ "a" AND title PR') == And(
        Compare(P("userName"), "eq", "a"), Present(P("title"))
    )
    assert f("NOT (title Pr) oR active eq TRUE") == Or(
        Not(Present(P("title"))), Compare(P("active"), "eq", True)
    )
    assert f('USERNAME eq "a"') == f('userName eq "a"')
    assert f('  userName   eq\t"a"  ') == f('userName eq "a"')


def test_json_string_escapes():
    node = f(r'userName eq "a\"b\\c\u00e9\n\/"')
    assert node.value == 'a"b\\cé\n/'
    assert f(render(node)) == node


def test_literals_true_false_null():
    assert f("active eq true").value is True
    assert f("active eq False").value is False
    assert f('active eq "False"').value is False  # Entra sends booleans as strings
    assert f("title eq null") == Compare(P("title"), "eq", None)
    assert f("title ne null").value is None


def test_unquoted_number_against_string_is_its_text():
    assert f("employeeNumber eq 701984").value == "701984"
    assert f("employeeNumber eq 0070").value == "0070"  # not a JSON number: bare word
    assert matches(f("employeeNumber eq 701984"), BJENSEN)


def test_datetime_literals():
    assert f('meta.created eq "2010-01-23T04:56:22Z"').value == datetime(
        2010, 1, 23, 4, 56, 22, tzinfo=UTC
    )
    # naive -> UTC
    assert f('meta.created eq "2010-01-23T04:56:22"').value == datetime(
        2010, 1, 23, 4, 56, 22, tzinfo=UTC
    )
    # offsets compare as instants
    node = f('meta.created eq "2010-01-23T05:56:22+01:00"')
    assert matches(node, BJENSEN)
    # JSMITH lastModified 2012-01-01T00:00:00+01:00 == 2011-12-31T23:00Z
    assert matches(f('meta.lastModified lt "2011-12-31T23:30:00Z"'), JSMITH)
    assert matches(f("meta.lastModified gt 2011-12-31T22:59:59Z"), JSMITH)  # bare word


def test_parse_datetime_helper():
    assert parse_datetime("2011-05-13T04:42:34.5Z") == datetime(
        2011, 5, 13, 4, 42, 34, 500000, tzinfo=UTC
    )
    assert parse_datetime("nope") is None
    assert parse_datetime(5) is None
    naive = datetime(2020, 1, 1)
    assert parse_datetime(naive).tzinfo is UTC


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "Empty"),
        ("   ", "Empty"),
        ('nope eq "x"', "Unknown attribute 'nope'"),
        ('name.nope eq "x"', "nope"),
        ('userName eq "x" garbage', "unexpected"),
        ('userName eq "x")', "unexpected"),
        ('(userName eq "x"', "expected ')'"),
        ('userName eq "x" and', "expected an attribute name"),
        ('userName eq "x" or or title pr', "Unknown attribute 'or'"),
        ("userName", "expected an operator"),
        ('userName xx "x"', "expected an operator"),
        ("userName eq", "expected a value"),
        ('userName eq "unterminated', "string literal"),
        (r'userName eq "bad \q escape"', "escape"),
        ('password eq "secret"', "password"),
        ('name eq "x"', "Complex attribute 'name'"),
        ("meta pr and meta eq 1", "Complex attribute 'meta'"),
        ("active gt true", "boolean"),
        ("active le false", "boolean"),
        ('active co "t"', "boolean"),
        ('active eq "yes"', "true or false"),
        ("active eq 1", "true or false"),
        ("userName eq true", "Expected a string"),
        ('meta.created gt "yesterday"', "dateTime"),
        ("meta.created gt 5", "dateTime"),
        ('meta.created co "2011"', "only allowed on strings"),
        ("title co null", "null"),
        ("title gt null", "null"),
        ('not userName eq "a"', "'not' must be followed"),
        ('emails[type eq "work"', "expected ']'"),
        ('emails[type eq "work" and emails[value pr]]', "Unknown sub-attribute 'emails'"),
        ('userName[value eq "x"]', "not a complex attribute"),
        ('emails[nope eq "x"]', "nope"),
        ('emails[emails.type eq "x"]', ""),
        ('emails[type eq "work"].nope eq "x"', "nope"),
        ("urn:ietf:params:scim:schemas:extension:other:2.0:User:x pr", "Unknown schema"),
        ("userName pr pr", "unexpected"),
        ('[type eq "x"]', "expected an attribute name"),
        ('userName eq "a" and ()', "expected an attribute name"),
    ],
)
def test_invalid_filters(text, detail):
    with pytest.raises(InvalidFilter) as exc:
        f(text)
    assert detail in exc.value.detail
    assert exc.value.scim_type == "invalidFilter"
    assert exc.value.status == 400


def test_limits():
    long = 'userName eq "' + "x" * 2000 + '"'
    with pytest.raises(InvalidFilter, match="2000 characters"):
        f(long)
    assert f('userName eq "x"', USER_TYPE) is not None
    with pytest.raises(InvalidFilter, match="10 characters"):
        parse('userName eq "x"', USER_TYPE, max_length=10)
    many = " or ".join(['userName eq "x"'] * 51)  # 51 compares + 50 ors = 101 nodes
    with pytest.raises(InvalidFilter, match="100 expressions"):
        f(many)
    f(" or ".join(['userName eq "x"'] * 50))  # 99 nodes: fine
    with pytest.raises(InvalidFilter, match="4 expressions"):
        parse(" and ".join(["title pr"] * 3), USER_TYPE, max_nodes=4)
    deep = "(" * 60 + "title pr" + ")" * 60
    with pytest.raises(InvalidFilter, match="nested"):
        f(deep)
    very_deep = "(" * 990 + "title pr" + ")" * 990  # within max_length: no RecursionError
    with pytest.raises(InvalidFilter):
        f(very_deep)
    nots = "not (" * 300 + "title pr" + ")" * 300
    with pytest.raises(InvalidFilter):
        f(nots)


# --------------------------------------------------------------------------- typed schema

NUM = Schema(
    "urn:test:Num",
    "Num",
    "numbers",
    (
        Attribute("age", "integer"),
        Attribute("score", "decimal"),
        Attribute("code", case_exact=True),
        Attribute("blob", "binary"),
        Attribute("tags", multi_valued=True),
    ),
)
NUM_TYPE = ResourceType("Num", "/Nums", NUM)


def test_numbers_and_case_exact():
    n = lambda t: parse(t, NUM_TYPE)  # noqa: E731
    assert n("age gt 30").value == 30
    assert isinstance(n("score le 1.5e2").value, float)
    assert n("score eq -0.5").value == -0.5
    assert matches(n("age gt 30"), {"age": 31})
    assert not matches(n("age gt 30"), {"age": 30})
    assert matches(n("age ge 30"), {"age": 30})
    assert not matches(n("age gt 30"), {"age": True})  # bool is not a number
    assert not matches(n("age gt 30"), {"age": "31"})
    assert matches(n("score lt 1.5"), {"score": 1})
    assert matches(n('code eq "A"'), {"code": "A"})
    assert not matches(n('code eq "A"'), {"code": "a"})
    assert matches(n('code sw "A"'), {"code": "Abc"})
    assert not matches(n('code sw "a"'), {"code": "Abc"})
    assert matches(n('tags eq "x"'), {"tags": ["y", "X"]})  # multi-valued simple, caseless
    for bad in ('age eq "30"', "age co 3", "age eq 1.5", 'blob gt "x"', "age eq true"):
        with pytest.raises(InvalidFilter):
            n(bad)
    assert n('blob eq "AAE="').value == "AAE="


# --------------------------------------------------------------------------- matches semantics


def test_matches_semantics():
    m = lambda t, r: matches(f(t), r)  # noqa: E731
    # caseExact false: caseless for every operator
    assert m('userName eq "BJensen"', BJENSEN)
    assert m('title co "GUIDE"', BJENSEN)
    assert m('title ew "guide"', BJENSEN)
    assert m('userName gt "A"', BJENSEN)
    # id is caseExact
    assert not m(f'id eq "{BJENSEN["id"].upper()}"', BJENSEN)
    # multi-valued: any value
    assert m('emails.value eq "babs@jensen.org"', BJENSEN)
    assert m('emails eq "BABS@jensen.org"', BJENSEN)
    assert m('emails.type ne "work"', BJENSEN)  # the home one differs
    # ne on an absent attribute is false (no value differs), not of eq is true
    assert not m('title ne "x"', JSMITH)
    assert m('not (title eq "x")', JSMITH)
    # null
    assert m("title eq null", JSMITH) and not m("title eq null", BJENSEN)
    assert m("title ne null", BJENSEN) and not m("title ne null", JSMITH)
    # pr: null, "", [] and {} are absent
    for absent in (None, "", [], {}):
        assert not m("title pr", {"title": absent})
        assert not m("emails pr", {"emails": absent})
    assert not m("name pr", {"name": {}})
    assert m("name pr", {"name": {"givenName": "x"}})
    assert not m("emails.value pr", {"emails": [{"type": "work"}]})
    assert m("emails.value pr", {"emails": [{"type": "work"}, {"value": "x"}]})
    # boolean
    assert m("active eq true", BJENSEN) and m("active eq false", JSMITH)
    assert not m("active eq true", {"active": "true"})  # canonical dicts hold real booleans
    assert m("active ne true", JSMITH)
    assert m("emails.primary eq true", BJENSEN)
    # extension
    assert m('manager.value eq "26118915"', BJENSEN)
    assert m(f"{ENT}:manager.value pr", BJENSEN)
    assert not m("manager pr", JSMITH)
    # value path: same element
    assert not m('emails[type eq "home" and value co "example.com"]', BJENSEN)
    assert m('emails[type eq "home" or value co "example.com"]', BJENSEN)
    assert m('emails[not (type eq "home")]', BJENSEN)
    assert m('name[givenName sw "b"]', BJENSEN)  # single-valued complex
    assert m('manager[value eq "26118915"]', BJENSEN)


def test_matches_tolerates_odd_resources():
    node = f(
        'emails[type eq "work"] and name.givenName eq "x" or meta.created gt "2020-01-01" '
        f'or {ENT}:manager.value eq "m" or title sw "x"'
    )
    odd = [
        {},
        {"emails": "x", "name": "y", "meta": 5, ENT: "z", "title": 5},
        {"emails": [None, 1, "a", {"type": None}], "name": [1], "meta": {"created": "bad"}},
        {"emails": {"type": "work"}, "name": {"givenName": "X"}, ENT: {"manager": ["m"]}},
        {"meta": {"created": datetime(2021, 1, 1)}, "title": ["xa"]},
    ]
    results = [matches(node, r) for r in odd]
    assert results == [False, False, False, True, True]


def test_element_matches():
    node = parse_path('emails[type eq "work"]', USER_TYPE).filter
    emails = P("emails")
    assert element_matches(node, emails, {"type": "WORK", "value": "x"})
    assert not element_matches(node, emails, {"type": "home"})
    assert not element_matches(node, emails, "not a dict")
    mgr = parse_path('manager[value eq "m"]', USER_TYPE)
    assert element_matches(mgr.filter, mgr.attr, {"value": "m"})


# --------------------------------------------------------------------------- PATCH paths


def test_parse_path():
    assert parse_path("userName", USER_TYPE) == PatchPath(P("userName"))
    assert parse_path("name.familyName", USER_TYPE) == PatchPath(P("name.familyName"))
    assert parse_path(f"{ENT}:employeeNumber", USER_TYPE) == PatchPath(P("employeeNumber"))
    pp = parse_path('emails[type eq "work"].value', USER_TYPE)
    assert pp == PatchPath(P("emails"), Compare(P("emails.type"), "eq", "work"), P("emails.value"))
    assert str(pp) == 'emails[type eq "work"].value'
    pp = parse_path('members[value eq "2819c223"]', GROUP_TYPE)
    assert pp.sub is None and pp.filter == Compare(P("members.value", GROUP_TYPE), "eq", "2819c223")
    pp = parse_path('addresses[type eq "work" and region pr].locality', USER_TYPE)
    assert pp.sub == P("addresses.locality")
    pp = parse_path(f'{ENT}:manager[value eq "x"]', USER_TYPE)
    assert pp.attr == P("manager")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidPath),
        ("nope", InvalidPath),
        ("name.givenName.x", InvalidPath),
        ('emails[type eq "work"', InvalidFilter),
        ('emails[type eq "work"].nope', InvalidPath),
        ('emails[type eq "work"]x', InvalidPath),
        ('emails[type eq "work"].', InvalidPath),
        ('userName[value eq "x"]', InvalidPath),
        ('emails.value[value eq "x"]', InvalidPath),
        ("emails]", InvalidPath),
        ('emails[typo eq "work"]', InvalidFilter),
        ('emails[type xx "work"]', InvalidFilter),
        ('nope[type eq "work"]', InvalidPath),
    ],
)
def test_parse_path_errors(text, error):
    with pytest.raises(error):
        parse_path(text, USER_TYPE)


# --------------------------------------------------------------------------- properties


def _leaf_paths(rtype: ResourceType):
    """Every non-complex attribute path usable in a filter, and the complex ones."""
    leaves, complexes = [], []
    tops = [(s, a) for s in rtype.schemas for a in s.attributes]
    tops += [(rtype.schema, a) for a in (*d.COMMON_ATTRIBUTES, d.SCHEMAS_ATTRIBUTE)]
    for schema, attr in tops:
        if attr.returned == "never":
            continue
        prefix = f"{schema.id}:" if schema is not rtype.schema else ""
        if attr.is_complex:
            complexes.append(resolve_path(rtype, prefix + attr.name))
            for sub in attr.sub_attributes:
                leaves.append(resolve_path(rtype, f"{prefix}{attr.name}.{sub.name}"))
        else:
            leaves.append(resolve_path(rtype, prefix + attr.name))
    return leaves, complexes


USER_LEAVES, USER_COMPLEX = _leaf_paths(USER_TYPE)
TZS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]

_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(TZS)
)
_text = st.text(max_size=8)


def _compare_for(path):
    t = path.definition.type
    if t == "boolean":
        ops, values = ["eq", "ne"], st.booleans()
    elif t == "dateTime":
        ops, values = ["eq", "ne", "gt", "ge", "lt", "le"], _datetimes
    elif t == "binary":
        ops, values = ["eq", "ne", "co", "sw", "ew"], _text
    else:
        ops, values = sorted(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]), _text
    typed = st.builds(Compare, st.just(path), st.sampled_from(ops), values)
    nulls = st.builds(Compare, st.just(path), st.sampled_from(["eq", "ne"]), st.none())
    return st.one_of(typed, nulls, st.builds(Present, st.just(path)))


def _tree(leaves, max_leaves):
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.builds(And, kids, kids), st.builds(Or, kids, kids), st.builds(Not, kids)
        ),
        max_leaves=max_leaves,
    )


def _value_path(attr):
    subs = [attr.with_sub(s.name) for s in attr.parent.sub_attributes]
    inner = _tree(st.one_of([_compare_for(s) for s in subs]), 4)
    return st.builds(ValuePath, st.just(attr), inner)


# one_of over precomputed strategies (flatmap is an order of magnitude slower)
USER_VALUE_PATHS = st.one_of([_value_path(a) for a in USER_COMPLEX])
USER_LEAF = st.one_of(
    st.one_of([_compare_for(p) for p in USER_LEAVES]),
    st.sampled_from(USER_COMPLEX).map(Present),
    USER_VALUE_PATHS,
)
USER_FILTERS = _tree(USER_LEAF, 8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(USER_FILTERS)
def test_property_parse_render_round_trip(node):
    text = render(node)
    assert parse(text, USER_TYPE, max_nodes=1000) == node


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
    max_leaves=4,
)
_sub_names = st.sampled_from(["value", "type", "primary", "givenName", "created", "display"])
_element = st.dictionaries(_sub_names, _json | _text | _datetimes.map(str), max_size=4)
_top_names = st.sampled_from(
    ["userName", "title", "active", "emails", "name", "meta", "addresses", "schemas", "id"]
)
RESOURCES = st.dictionaries(
    _top_names | st.just(ENT),
    _json | _element | st.lists(_element, max_size=3),
    max_size=6,
)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(USER_FILTERS, RESOURCES)
def test_property_matches_never_raises(node, resource):
    result = matches(node, resource, USER_TYPE)
    assert isinstance(result, bool)
    assert matches(Not(node), resource, USER_TYPE) is (not result)


@settings(max_examples=40, deadline=None)
@given(USER_VALUE_PATHS, RESOURCES)
def test_property_single_compare_value_path_equals_dotted(vp, resource):
    """``emails[value eq "x"]`` matches exactly when ``emails.value eq "x"`` does.

    Not for ``eq null``: a value path needs an element (EXISTS), ``emails.value eq null`` not.
    """
    if isinstance(vp.filter, Present) or (
        isinstance(vp.filter, Compare) and vp.filter.value is not None
    ):
        assert matches(vp, resource) == matches(vp.filter, resource)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(USER_LEAVES), RESOURCES)
def test_property_eq_null_is_not_present(path, resource):
    assert matches(Compare(path, "eq", None), resource) == (not matches(Present(path), resource))
    assert matches(Compare(path, "ne", None), resource) == matches(Present(path), resource)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_property_parse_garbage_only_raises_invalid_filter(text):
    try:
        node = parse(text, USER_TYPE)
    except InvalidFilter:
        return
    assert parse(render(node), USER_TYPE) == node
