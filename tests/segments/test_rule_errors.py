"""Rules that must be refused, and how: a ``RuleError`` that names the problem.

The language is Python syntax parsed with ``ast`` and never evaluated, so
every attempt to reach Python (imports, dunders, attribute access, calls
other than the rule functions) or SQL (quotes, semicolons, comments) has to
stop at ``parse_rule`` — and values that do get through are bound
parameters, which the tests at the end check against a real store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, create_engine, func, insert, select

from narrowcast.segments import (
    Catalog,
    Compiler,
    RuleError,
    SegmentCycle,
    load_catalog,
    parse_duration,
    parse_rule,
)
from narrowcast.store import Store
from narrowcast.store.schema import attribute_keys, customers, events, metadata
from tests.segments.reference import World, evaluate

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Iterator[Catalog]:
    """What ``load_catalog`` reads from a store with three imported attributes, one of
    them named to break out of SQL, and two named segments."""
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(attribute_keys),
            [
                {"key": "lifestyle", "value_type": "text", "first_seen_at": NOW},
                {"key": "score", "value_type": "number", "first_seen_at": NOW},
                {
                    "key": "x'); DROP TABLE customers; --",
                    "value_type": "text",
                    "first_seen_at": NOW,
                },
            ],
        )
        yield load_catalog(conn, {"vip": "score >= 9", "buyers": "ever('order')"})
    engine.dispose()


def refused(rule: str, catalog: Catalog) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule, catalog)
    error = caught.value
    # The message shows the rule — or, for a rule over several lines, the line at fault.
    assert error.rule == rule.strip() or error.rule in rule.strip().splitlines()
    return error


def caret(error: RuleError) -> int:
    """The column the rendered message points at, checked against the rule it shows."""
    lines = str(error).splitlines()
    assert lines[1] == f"    {error.rule}", str(error)
    assert lines[2].strip() == "^", str(error)
    return lines[2].index("^") - 4


# --- syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "at"),
    [
        ("country ==", None),
        ("country = 'ES'", None),
        ("count('order' >= 1", None),
        ("country == 'ES' and and", "and"),
        ("country == 'x'; DROP TABLE customers", ";"),
        ("country == 'x' /* */", None),
        ("  country == 'ES' )", ")"),
    ],
)
def test_a_syntax_error_shows_the_rule_with_a_caret(
    catalog: Catalog, rule: str, at: str | None
) -> None:
    error = refused(rule, catalog)
    assert "not a valid rule" in str(error)
    column = caret(error)
    assert column == error.column
    assert 0 <= column <= len(error.rule)
    assert str(error).startswith(f"rule, column {column + 1}: ")
    if at is not None:
        assert error.rule[column:].startswith(at), str(error)
        assert error.rule.rfind(at) == column, str(error)


@pytest.mark.parametrize("rule", ["", "   ", "\n"])
def test_an_empty_rule_is_refused(catalog: Catalog, rule: str) -> None:
    assert "not a valid rule" in str(refused(rule, catalog))


def test_the_caret_points_at_the_problem(catalog: Catalog) -> None:
    rule = "country == 'ES' and contry == 'ES'"
    assert caret(refused(rule, catalog)) == rule.index("contry")
    rule = "count('order') >= 1 or count('ordr') >= 1"
    assert caret(refused(rule, catalog)) == rule.index("count('ordr')")
    rule = "country in ['ES', 'PT'] and score > '3'"
    assert caret(refused(rule, catalog)) == rule.index("'3'")
    rule = "city in ['Sevilla', 4]"
    assert caret(refused(rule, catalog)) == rule.index("4")


def test_the_caret_counts_characters_not_bytes(catalog: Catalog) -> None:
    rule = "city in ['Málaga', 'Cádiz'] and contry == 'ES'"
    assert caret(refused(rule, catalog)) == rule.index("contry")


# --- unknown names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("contry == 'ES'", "unknown attribute 'contry' — did you mean 'country'?"),
        ("lifestye == 'urban'", "unknown attribute 'lifestye' — did you mean 'lifestyle'?"),
        ("xyzzy == 1", "unknown attribute 'xyzzy'"),
        ("count == 1", "count is a function — call it: count(…)"),
        ("cout('order') > 1", "unknown function 'cout' — did you mean 'count'?"),
        ("days_snce('order') > 1", "unknown function 'days_snce' — did you mean 'days_since'?"),
        ("count('ordr') > 1", "unknown event type 'ordr' — did you mean 'order'?"),
        ("ever('purchase')", "unknown event type 'purchase'"),
        ("sum('order', 'valu') > 1", "event type 'order' has no property 'valu' — did you mean"),
        ("last('page_view', 'pag') == 'x'", "event type 'page_view' has no property 'pag'"),
        (
            "count('order', categry='shoes') > 1",
            "event type 'order' has no property 'categry' — did you mean 'category'?",
        ),
        ("segment('vipp')", "unknown segment 'vipp' — did you mean 'vip'?"),
        ("segment('nobody')", "unknown segment 'nobody'"),
    ],
)
def test_unknown_names_are_named_with_a_suggestion(
    catalog: Catalog, rule: str, message: str
) -> None:
    assert message in str(refused(rule, catalog))


# --- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("count() > 1", "count takes 1 quoted argument, e.g. count('order')"),
        ("count('order', 'value') > 1", "count takes 1 quoted argument"),
        ("ever('order', 'value')", "ever takes 1 quoted argument"),
        ("sum('order') > 1", "sum takes 2 quoted arguments, e.g. sum('order', 'value')"),
        ("last('order') == 'x'", "last takes 2 quoted arguments"),
        ("store_avg('order') > 1", "store_avg takes 2 quoted arguments"),
        ("count(order) > 1", "count() takes quoted names, e.g. count('order')"),
        ("count(3) > 1", "count() takes quoted names"),
        ("count(*['order']) > 1", "count() takes quoted names"),
        ("in_geo()", "in_geo takes one path"),
        ("in_geo('ES', 'PT')", "in_geo takes one path"),
        ("in_geo('ES', within='1d')", "in_geo takes one path"),
        ("in_geo(3)", "in_geo() takes quoted names"),
        ("in_geo('ES//Sevilla')", "a geo path is COUNTRY[/region[/city[/neighbourhood]]]"),
        ("in_geo('')", "a geo path is COUNTRY"),
        ("in_geo('ES/A/B/C/D')", "a geo path is COUNTRY"),
        ("segment()", "segment takes one segment name"),
        ("segment('vip', 'buyers')", "segment takes one segment name"),
        ("sum('order', 'currency') > 1", "sum needs a numeric property; 'currency' is text"),
        ("avg('page_view', 'page') > 1", "avg needs a numeric property; 'page' is text"),
        ("store_avg('order', 'value', category='x') > 1", "store_avg takes only within="),
        ("count('order', within=country) > 1", "within= takes a plain value"),
        ("count('order', category=country) > 1", "category= takes a plain value"),
        ("count('order')", "this part is a value, not a condition"),
        ("country", "this part is a value, not a condition"),
        ("count('order') and ever('order')", "this part is a value, not a condition"),
        ("country == None", "None is not a value a rule can use"),
        ("country == b'ES'", "b'ES' is not a value a rule can use"),
        ("count('order') > 1j", "1j is not a value a rule can use"),
        ("city in 'Sevilla'", "'in' needs a list of values, e.g. city in ['Madrid', 'Sevilla']"),
        ("city in []", "'in' needs a list of values"),
        ("city in [country]", "a list in a rule may only hold plain values"),
        ("country is 'ES'", "'Is' comparisons are not allowed — use ==, !=, <, <=, >, >=, in"),
        ("country is not 'ES'", "'IsNot' comparisons are not allowed"),
        ("'E' < country in ['ES']", "'in' cannot be chained with other comparisons"),
        ("city in ['Sevilla'] in [True]", "'in' cannot be chained with other comparisons"),
        ("-country == 'ES'", "only a number can be negated"),
        ("not count('order')", "this part is a value, not a condition"),
    ],
)
def test_wrong_arguments_are_explained(catalog: Catalog, rule: str, message: str) -> None:
    assert message in str(refused(rule, catalog))


def test_a_tuple_is_a_list_of_values(catalog: Catalog) -> None:
    assert parse_rule("city in ('Madrid', 'Sevilla')", catalog) == parse_rule(
        "city in ['Madrid', 'Sevilla']", catalog
    )


# --- durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "within",
    ["'30x'", "'0d'", "'-1d'", "30", "-1", "'30'", "'1.5d'", "'30D'", "'d'", "''", "'1000000d'"],
)
def test_bad_durations_are_refused(catalog: Catalog, within: str) -> None:
    error = refused(f"count('order', within={within}) >= 1", catalog)
    assert f"within={within} is not a duration" in str(error)
    assert "12h, 30d, 6w" in str(error)


def test_durations() -> None:
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("6w") == timedelta(days=42)
    assert parse_duration(" 7d ") == timedelta(days=7)


def test_a_window_longer_than_the_calendar(catalog: Catalog) -> None:
    try:
        rule = parse_rule("count('order', within='999999d') >= 1", catalog)
    except RuleError:
        return  # refusing it is as good as compiling it
    Compiler(NOW).query(rule)


# --- types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("country == 3", "cannot compare text with number — check the quotes"),
        ("3 < country", "cannot compare number with text"),
        ("country in ['ES', 3]", "cannot compare text with number"),
        ("count('order') > '2'", "cannot compare number with text"),
        ("age > '30'", "cannot compare number with text"),
        ("score == 'high'", "cannot compare number with text"),
        ("lifestyle == 1", "cannot compare text with number"),
        ("last('page_view', 'page') > 3", "cannot compare text with number"),
        ("last('order', 'value') == 'x'", "cannot compare number with text"),
        ("ever('order') > 1", "cannot compare bool with number"),
        ("count('order') == True", "cannot compare number with bool"),
        ("birth_date == 19900101", "cannot compare date with number"),
        ("birth_date < 'yesterday'", "'yesterday' is not a date like 1990-01-31"),
        ("birth_date in ['1990-01-01', '1990-02-30']", "'1990-02-30' is not a date"),
        ("18 <= age <= '35'", "cannot compare number with text"),
    ],
)
def test_text_is_not_compared_with_numbers(catalog: Catalog, rule: str, message: str) -> None:
    assert message in str(refused(rule, catalog))


@pytest.mark.parametrize(
    "rule",
    [
        "count('page_view', page=3) >= 1",
        "count('order', value='12.5') >= 1",
        "ever('order', category=True)",
    ],
)
def test_a_filter_of_the_wrong_type_is_refused(catalog: Catalog, rule: str) -> None:
    assert "cannot compare" in str(refused(rule, catalog))


# --- segments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "rule", "loop"),
    [
        ({"a": "segment('b')", "b": "segment('a')"}, "segment('a')", "a → b → a"),
        ({"me": "segment('me') or country == 'ES'"}, "segment('me')", "me → me"),
        (
            {"a": "ever('order') and segment('b')", "b": "segment('c')", "c": "not segment('a')"},
            "country == 'ES' or segment('b')",
            "b → c → a → b",
        ),
    ],
)
def test_a_segment_cycle_shows_the_loop(
    catalog: Catalog, segments: dict[str, str], rule: str, loop: str
) -> None:
    with_segments = Catalog(
        catalog.attributes, catalog.event_types, catalog.properties, segments=segments
    )
    with pytest.raises(SegmentCycle) as caught:
        parse_rule(rule, with_segments)
    assert isinstance(caught.value, RuleError)
    assert f"segments refer to each other in a loop: {loop}" in str(caught.value)


def test_a_segment_used_twice_is_not_a_cycle(catalog: Catalog) -> None:
    segments = {"x": "segment('y') and segment('z')", "y": "segment('z')", "z": "score > 1"}
    with_segments = Catalog(
        catalog.attributes, catalog.event_types, catalog.properties, segments=segments
    )
    parse_rule("segment('x') or segment('z')", with_segments)


def test_an_error_inside_a_segment_names_the_segment(catalog: Catalog) -> None:
    with_segments = Catalog(
        catalog.attributes,
        catalog.event_types,
        catalog.properties,
        segments={"broken": "contry == 'ES'"},
    )
    with pytest.raises(RuleError) as caught:
        parse_rule("score > 1 and segment('broken')", with_segments)
    message = str(caught.value)
    assert message.startswith("segment 'broken', column 1: unknown attribute 'contry'")
    assert "did you mean 'country'?" in message


# --- injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("country == 'x'; DROP TABLE customers", "not a valid rule"),
        ("country == 'x' -- comment", "arithmetic is not allowed"),
        ("country == 'x'\nDROP TABLE customers", "not a valid rule"),
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "only the rule functions can be called"),
        ("().__class__", "attribute access (x.y) is not allowed"),
        ("().__class__.__bases__[0].__subclasses__()", "only the rule functions can be called"),
        ("country.__class__ == 'x'", "attribute access (x.y) is not allowed"),
        ("country.lower() == 'es'", "only the rule functions can be called"),
        ("country[0] == 'E'", "indexing (x[…]) is not allowed"),
        ("lambda: True", "a lambda is not allowed"),
        ("(lambda: True)()", "only the rule functions can be called"),
        ("[c for c in country]", "a comprehension is not allowed"),
        ("{c: 1 for c in country}", "a comprehension is not allowed"),
        ("country in [c for c in 'ES']", "'in' needs a list of values"),
        ("any(c == 'E' for c in country)", "unknown function 'any'"),
        ("f'{country}' == 'ES'", "an f-string is not allowed"),
        ("country == f'ES'", "an f-string is not allowed"),
        ("(x := True)", "assignment (:=) is not allowed"),
        ("count('order', **{'within': '1d'}) > 1", "**arguments are not allowed"),
        ("count('order', **kwargs) > 1", "**arguments are not allowed"),
        ("eval('True')", "unknown function 'eval'"),
        ("exec('import os')", "unknown function 'exec'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("getattr(country, 'x') == 1", "unknown function 'getattr'"),
        ("globals()", "unknown function 'globals'"),
        ("True if country else False", "a conditional expression is not allowed"),
        ("{'a': 1}", "a dict is not allowed"),
        ("{country}", "a set is not allowed"),
        ("await country", "await is not allowed"),
        ("count('order') + 1 > 1", "arithmetic is not allowed"),
        ('count("order\'); DROP TABLE events; --") > 1', "unknown event type"),
        ("sum('order', \"value') OR 1=1 --\") > 1", "has no property"),
        ("x'); DROP TABLE customers; -- == 'a'", "not a valid rule"),
        ("\"country\" == 'ES'", ""),  # a quoted name is a plain text value, never a column
    ],
)
def test_injection_attempts_stop_at_parse_time(catalog: Catalog, rule: str, message: str) -> None:
    if not message:
        tree = parse_rule(rule, catalog)  # text == text: allowed, and never names a column
        assert "Attr" not in repr(tree)
        return
    assert message in str(refused(rule, catalog))


def test_the_evaluation_instant_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        Compiler(datetime(2024, 6, 15, 12, 0))


# --- values are bound parameters ------------------------------------------------------

HOSTILE = [
    "x' OR '1'='1",
    "'; DROP TABLE customers; --",
    '" OR ""="',
    "ES') OR 1=1 --",
    "\\'; DELETE FROM events; --",
    "%(param_1)s",
    "$1",
]


def _counts(conn: Connection) -> tuple[int, int]:
    return (
        conn.execute(select(func.count()).select_from(customers)).scalar_one(),
        conn.execute(select(func.count()).select_from(events)).scalar_one(),
    )


def test_hostile_values_are_bound_and_match_nobody(store: Store) -> None:
    world = World(
        attribute_types={"lifestyle": "text"},
        property_types={"page_view": {"page": "text"}},
    )
    world.customer("ana", country="ES", city="Sevilla", attributes={"lifestyle": "urban"})
    world.customer("ben", country="PT", city="x' OR '1'='1")
    world.event("ana", "page_view", NOW - timedelta(hours=1), page="home")
    world.event("ben", "order", NOW - timedelta(hours=1), category="'; DROP TABLE customers; --")
    with store.begin() as conn:
        world.write(conn)
    cases: list[tuple[str, set[str]]] = []
    for value in HOSTILE:
        cases += [
            (f"country in [{value!r}]", set()),
            (f"city in [{value!r}, 'Madrid']", {"ben"} if value == "x' OR '1'='1" else set()),
            (f"lifestyle != {value!r}", {"ana"}),
            (f"last('page_view', 'page') in [{value!r}]", set()),
            (
                f"ever('order', category={value!r})",
                {"ben"} if value == "'; DROP TABLE customers; --" else set(),
            ),
            (f"in_geo({('ES/' + value)!r})", set()),
        ]
    with store.connect() as conn:
        catalog = load_catalog(conn)
        for rule, expected in cases:
            tree = parse_rule(rule, catalog)
            assert set(conn.execute(Compiler(NOW).query(tree)).scalars()) == expected, rule
            assert evaluate(tree, world, NOW) == expected, rule
    with store.connect() as conn:
        assert _counts(conn) == (2, 2)


def test_a_nul_character_is_refused_or_compared(store: Store) -> None:
    world = World()
    world.customer("ana", country="ES")
    with store.begin() as conn:
        world.write(conn)
    with store.connect() as conn:
        try:
            tree = parse_rule("country != 'E\\x00'", load_catalog(conn))
        except RuleError:
            return
        assert set(conn.execute(Compiler(NOW).query(tree)).scalars()) == {"ana"}
