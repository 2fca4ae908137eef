"""The SQL compiler against the reference evaluator, on random stores and rules.

Hypothesis builds a small store (a dozen customers at most, thirty events at
most, instants on and around the window edges and ties between them, missing
values everywhere) and a few rules written as text from a small grammar,
writes the store with plain inserts, and requires the query ``Compiler(now)``
builds to return exactly the customers ``reference.evaluate`` finds — on
SQLite and on PostgreSQL. A second property compares every function's value
per customer, which catches an off-by-one that a threshold would hide.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from narrowcast.segments import Compiler, load_catalog, parse_rule
from narrowcast.segments.language import Compare, Node, Truth
from narrowcast.segments.scores import Intent, LeadRule, LeadScore, Nps, ScoreSettings
from narrowcast.store import Store
from narrowcast.store.schema import CUSTOMER_TYPES, customers
from tests.segments.reference import World, evaluate, value_of

SETTINGS = settings(
    max_examples=100,
    report_multiple_bugs=False,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Instants that put birthdays and window edges where they hurt: the day
# before and of a 29 February birthday, a leap day, a European DST change,
# and sub-second precision.
NOWS = (
    datetime(2023, 2, 28, 12, 0, tzinfo=UTC),
    datetime(2023, 3, 1, 0, 0, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
    datetime(2024, 10, 27, 0, 30, 0, 250_000, tzinfo=UTC),
)
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "1d": timedelta(days=1)}
WINDOWS |= {"7d": timedelta(days=7), "2w": timedelta(weeks=2), "30d": timedelta(days=30)}
SECOND = timedelta(seconds=1)
MILLISECOND = timedelta(milliseconds=1)
# Offsets from now: now itself, just after it, and every window edge with
# the instants either side of it.
EDGES = sorted(
    {timedelta(0), SECOND, timedelta(days=1), timedelta(days=-60)}
    | {-w + d for w in WINDOWS.values() for d in (timedelta(0), SECOND, -SECOND, MILLISECOND)},
)

GEOGRAPHY = (
    ("ES", "Andalucía", "Sevilla", "Triana"),
    ("ES", "Andalucía", "Sevilla", "Nervión"),
    ("ES", "Andalucía", "Málaga", None),
    ("ES", "Madrid", "Madrid", "Centro"),
    ("ES", None, None, None),
    ("ES", None, "Sevilla", None),
    ("PT", "Lisboa", "Lisboa", "Alfama"),
    (None, None, None, None),
)
EVENT_TYPES = ("order", "page_view", "cart_add")
PROPERTIES = {"page": "text", "category": "text", "device": "text", "value": "number"}
PROPERTY_VALUES: dict[str, list[Any]] = {
    "page": ["home", "cart", "o'clock"],
    "category": ["shoes", "books"],
    "device": ["mobile", "desktop"],
    # Sums and averages of these are exact in binary floating point, so SQL
    # and Python agree to the last bit.
    "value": [0.0, 5.0, 12.5, 40.0],
}
TEXT_ATTRIBUTES: dict[str, list[str]] = {
    "country": ["ES", "PT", "FR"],
    "region": ["Andalucía", "Madrid"],
    "city": ["Sevilla", "Madrid", "Málaga", "Lisboa"],
    "neighborhood": ["Triana", "Centro"],
    "customer_type": list(CUSTOMER_TYPES),
    "lifestyle": ["urban", "rural", "nomad"],
}
NUMBER_ATTRIBUTES: dict[str, list[float]] = {
    "age": [0, 17, 18, 22, 23, 24, 35, 60],
    "score": [0, 1.5, 3, 10],
}
SEGMENTS = {
    "spain": "in_geo('ES')",
    "recent_buyers": "ever('order', within='30d')",
    "spanish_buyers": "segment('spain') and segment('recent_buyers')",
}
NUMBERS = [0, 1, 2, 3, 5, 7, 12.5, 30]
DATES = ["1990-06-15", "2000-02-29", "1960-03-01", "2005-01-01", "19900615"]
ORDERINGS = ["<", "<=", ">", ">="]
# Scores read this world's event types, so every score has data to get wrong.
SCORES = ScoreSettings(
    lead_score=LeadScore(
        rules=(
            LeadRule(event="page_view", match={"page": "home"}, points=10),
            LeadRule(event="page_view", match={"device": "mobile"}, points=2.5),
            LeadRule(event="cart_add", points=-3, within="7d"),
            LeadRule(event="order", match={"value": 40.0}, points=20),
        )
    ),
    nps=Nps(event="cart_add", property="value", promoter=40, passive=12.5),
    intent=Intent(events=("page_view", "cart_add"), hot="1d", warm="7d"),
)
SCORE_CONDITIONS = [
    *(f"lead_score {op} {n}" for op in (">=", "<", "==") for n in (-3, 0, 10, 12.5)),
    *(f"nps {op} {n}" for op in (">=", "<") for n in (5, 12.5)),
    *(f"nps_class == {c!r}" for c in ("promoter", "passive", "detractor")),
    "nps_class != 'promoter'",
    "nps_class in ['promoter', 'passive']",
    *(f"intent == {c!r}" for c in ("hot", "warm", "cold")),
    "intent != 'cold'",
    "intent not in ['hot']",
    *(f"rfm_{m} {op} {k}" for m in "rfm" for op in (">=", "<=") for k in (1, 3, 5)),
    "clv > 10",
    "clv <= 10",
    "rfm_r > rfm_f",
    "lead_score > count('page_view')",
]
NOT_SET = object()


# --- stores -----------------------------------------------------------------------


def _birthdays(now: datetime) -> st.SearchStrategy[date | None]:
    today = now.date()

    def years_before(years: int, shift: int) -> date:
        try:
            day = today.replace(year=today.year - years)
        except ValueError:  # 29 February in a year without one
            day = today.replace(year=today.year - years, day=28)
        return day + timedelta(days=shift)

    return st.one_of(
        st.none(),
        st.sampled_from([date(2000, 2, 29), date(2004, 2, 29), date(1960, 3, 1), today]),
        st.builds(years_before, st.integers(17, 36), st.sampled_from([-1, 0, 1])),
        st.dates(date(1930, 1, 1), today),
    )


def _optional(values: list[Any]) -> st.SearchStrategy[Any]:
    """A value, JSON null, or no key at all (``NOT_SET``)."""
    return st.one_of(st.just(NOT_SET), st.none(), st.sampled_from(values))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, datetime]:
    now = draw(st.sampled_from(NOWS))
    world = World(
        attribute_types={"score": "number", "lifestyle": "text", "vip": "bool"},
        property_types={kind: dict(PROPERTIES) for kind in EVENT_TYPES},
    )
    for number in range(draw(st.integers(1, 12))):
        country, region, city, neighborhood = draw(st.sampled_from(GEOGRAPHY))
        attributes = {
            "score": draw(_optional(NUMBER_ATTRIBUTES["score"])),
            "lifestyle": draw(_optional(TEXT_ATTRIBUTES["lifestyle"])),
            "vip": draw(st.sampled_from([NOT_SET, True, False])),
        }
        world.customer(
            f"c{number:02}",
            country=country,
            region=region,
            city=city,
            neighborhood=neighborhood,
            birth_date=draw(_birthdays(now)),
            customer_type=draw(st.sampled_from(CUSTOMER_TYPES)),
            attributes={k: v for k, v in attributes.items() if v is not NOT_SET},
        )
    edge = st.sampled_from(EDGES)
    anywhere = st.integers(-60 * 86400, 60 * 86400).map(lambda s: timedelta(seconds=s))
    offsets = st.one_of(edge, edge, anywhere)  # two in three on an edge
    for _ in range(draw(st.integers(0, 30))):
        properties = {name: draw(_optional(values)) for name, values in PROPERTY_VALUES.items()}
        if world.events and draw(st.integers(0, 3)) == 0:
            # A twin: same customer, type and instant, so last() has a tie to break.
            twin = draw(st.sampled_from(world.events))
            owner, kind, ts = twin["customer_id"], twin["type"], twin["ts"]
        else:
            owner = draw(st.sampled_from(world.customers))["id"]
            kind = draw(st.sampled_from(EVENT_TYPES))
            ts = now + draw(offsets)
        world.event(owner, kind, ts, **{k: v for k, v in properties.items() if v is not NOT_SET})
    for customer in world.customers:
        if draw(st.booleans()):
            world.scores[(customer["id"], "clv")] = draw(st.sampled_from([None, 0.0, 10.0, 55.5]))
    return world, now


# --- rules --------------------------------------------------------------------------


def _keywords(draw: st.DrawFn, *, filters: bool = True) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append(f"within={draw(st.sampled_from(sorted(WINDOWS)))!r}")
    if filters and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(PROPERTY_VALUES)))
        parts.append(f"{name}={draw(st.sampled_from(PROPERTY_VALUES[name]))!r}")
    if filters and draw(st.integers(0, 3)) == 0:
        presence = draw(st.sampled_from(["has", "lacks"]))
        parts.append(f"{presence}={draw(st.sampled_from(sorted(PROPERTY_VALUES)))!r}")
    return "".join(f", {p}" for p in parts)


@st.composite
def _aggregate(draw: st.DrawFn) -> str:
    """A number-valued aggregate call."""
    kind = repr(draw(st.sampled_from(EVENT_TYPES)))
    function = draw(
        st.sampled_from(
            ["count", "sum", "avg", "min", "max", "distinct", "days_since", "days_since_first"]
        )
    )
    keywords = _keywords(draw)
    if function in ("count", "days_since", "days_since_first"):
        return f"{function}({kind}{keywords})"
    if function == "distinct":
        return f"distinct({kind}, {draw(st.sampled_from(sorted(PROPERTIES)))!r}{keywords})"
    return f"{function}({kind}, 'value'{keywords})"


@st.composite
def _values(draw: st.DrawFn) -> list[str]:
    """The attributes and every function once, with a random event type, window
    and filter; each is made a rule by a comparison, so that it parses."""
    texts = ["age >= 0", "score >= 0", "lifestyle != ''", "birth_date != '2000-01-01'", "vip"]
    texts += ["lead_score >= 0", "nps >= 0", "nps_class != ''", "intent != ''", "clv >= 0"]
    texts += ["rfm_r >= 0", "rfm_f >= 0", "rfm_m >= 0"]
    texts += ["latest_of('order', 'cart_add', 'page_view') != ''"]
    for function in ("count", "days_since", "days_since_first"):
        texts.append(f"{function}({draw(st.sampled_from(EVENT_TYPES))!r}{_keywords(draw)}) >= 0")
    texts.append(f"ever({draw(st.sampled_from(EVENT_TYPES))!r}{_keywords(draw)})")
    for window in WINDOWS:  # every window edge, where EDGES put events
        texts.append(f"count({draw(st.sampled_from(EVENT_TYPES))!r}, within={window!r}) >= 0")
    for function in ("sum", "avg", "min", "max", "distinct", "last", "store_avg"):
        kind = draw(st.sampled_from(EVENT_TYPES))
        name = "value"
        if function in ("distinct", "last"):
            name = draw(st.sampled_from(sorted(PROPERTIES)))
        keywords = _keywords(draw, filters=function != "store_avg")
        other = "''" if function == "last" and PROPERTIES[name] == "text" else "0"
        texts.append(f"{function}({kind!r}, {name!r}{keywords}) != {other}")
    return texts


@st.composite
def _atom(draw: st.DrawFn, dialect: str) -> str:
    """One condition that the compiler should get right on ``dialect``."""

    def equal(left: str, right: Any) -> str:
        return f"{left} == {right!r}" if draw(st.booleans()) else f"{left} in [{right!r}]"

    choice = draw(st.integers(0, 15))
    if choice == 14:
        return draw(st.sampled_from(SCORE_CONDITIONS))
    if choice == 15:
        kinds = draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=2, max_size=3, unique=True))
        within = (
            f", within={draw(st.sampled_from(sorted(WINDOWS)))!r}" if draw(st.booleans()) else ""
        )
        call = f"latest_of({', '.join(map(repr, kinds))}{within})"
        if draw(st.booleans()):
            return f"{call} in {kinds[:1]!r}"
        return f"{call} {draw(st.sampled_from(['==', '!=']))} {kinds[-1]!r}"
    if choice == 0:
        name = draw(st.sampled_from(sorted(TEXT_ATTRIBUTES)))
        value = draw(st.sampled_from(TEXT_ATTRIBUTES[name]))
        if draw(st.booleans()):
            return f"{name} != {value!r}"
        return equal(name, value)
    if choice == 1:
        name = draw(st.sampled_from(sorted(TEXT_ATTRIBUTES)))
        values = draw(st.lists(st.sampled_from(TEXT_ATTRIBUTES[name]), min_size=1, max_size=3))
        return f"{name} {draw(st.sampled_from(['in', 'not in']))} {values!r}"
    if choice == 2:
        name = draw(st.sampled_from(sorted(NUMBER_ATTRIBUTES)))
        value = draw(st.sampled_from(NUMBER_ATTRIBUTES[name]))
        if draw(st.booleans()):
            return f"{value!r} {draw(st.sampled_from(ORDERINGS))} {name}"
        return f"{name} {draw(st.sampled_from([*ORDERINGS, '!=']))} {value!r}"
    if choice == 3:
        low, high = sorted(
            draw(st.lists(st.sampled_from(NUMBER_ATTRIBUTES["age"]), min_size=2, max_size=2))
        )
        return f"{low} <= age {draw(st.sampled_from(['<', '<=']))} {high}"
    if choice == 4:
        return draw(st.sampled_from(["vip", "vip != True", "vip != False"]))
    if choice == 5:
        levels = draw(st.sampled_from([g for g in GEOGRAPHY if g[0]]))
        depth = draw(st.integers(1, sum(1 for part in levels if part)))
        path = "/".join(p for p in levels[:depth] if p is not None)
        if draw(st.booleans()):
            path = path[:2].lower() + path[2:]
        return f"in_geo({path!r})"
    if choice == 6:
        operator = draw(st.sampled_from([*ORDERINGS, "!="]))
        return f"{draw(_aggregate())} {operator} {draw(st.sampled_from(NUMBERS))!r}"
    if choice == 7:
        return equal(draw(_aggregate()), draw(st.sampled_from(NUMBERS)))
    if choice == 8:
        kind = draw(st.sampled_from(EVENT_TYPES))
        return f"ever({kind!r}{_keywords(draw)})"
    if choice == 9:
        kind = draw(st.sampled_from(EVENT_TYPES))
        name = draw(st.sampled_from(sorted(PROPERTIES)))
        last = f"last({kind!r}, {name!r}{_keywords(draw)})"
        value = draw(st.sampled_from(PROPERTY_VALUES[name]))
        if name == "value":
            return f"{last} {draw(st.sampled_from([*ORDERINGS, '!=']))} {value!r}"
        if draw(st.booleans()):
            return f"{last} != {value!r}"
        return equal(last, value)
    if choice == 10:
        kind = draw(st.sampled_from(EVENT_TYPES))
        store_wide = f"store_avg({kind!r}, 'value'{_keywords(draw, filters=False)})"
        if draw(st.booleans()):
            return (
                f"{store_wide} {draw(st.sampled_from(ORDERINGS))} {draw(st.sampled_from(NUMBERS))}"
            )
        mine = f"avg({kind!r}, 'value'{_keywords(draw)})"
        return f"{mine} {draw(st.sampled_from(ORDERINGS))} {store_wide}"
    if choice == 11:
        operator = draw(st.sampled_from([*ORDERINGS, "!="]))
        return f"{draw(_aggregate())} {operator} {draw(_aggregate())}"
    if choice == 12:
        return f"segment({draw(st.sampled_from(sorted(SEGMENTS)))!r})"
    value = draw(st.sampled_from(DATES))
    if draw(st.booleans()):
        values = draw(st.lists(st.sampled_from(DATES), min_size=1, max_size=3))
        return f"birth_date {draw(st.sampled_from(['in', 'not in']))} {values!r}"
    operator = draw(st.sampled_from([*ORDERINGS, "!=", "=="]))
    if draw(st.booleans()):
        return f"{value!r} {operator} birth_date"
    return f"birth_date {operator} {value!r}"


def rules(dialect: str = "sqlite", depth: int = 3) -> st.SearchStrategy[str]:
    """Rule text: atoms joined by and/or/not, nested up to ``depth``."""
    atom = _atom(dialect)
    if depth == 0:
        return atom
    inner = rules(dialect, depth - 1)
    return st.one_of(
        atom,
        st.builds(lambda r: f"not ({r})", inner),
        st.builds(lambda r: f"not {r}", atom),
        st.lists(inner, min_size=2, max_size=3).flatmap(
            lambda items: st.sampled_from([" and ", " or "]).map(
                lambda op: op.join(f"({item})" for item in items)
            )
        ),
    )


def _operand(rule: Node) -> Node:
    """The value a one-comparison rule is about (``count('order')`` in ``count('order') >= 0``)."""
    assert isinstance(rule, Compare | Truth), rule
    return rule.left if isinstance(rule, Compare) else rule.item


def _members(store: Store, text: str, now: datetime) -> tuple[set[str], Any]:
    """Who the rule matches, asked as sets and row by row — which must agree."""
    with store.connect() as conn:
        rule = parse_rule(text, load_catalog(conn, SEGMENTS))
        found = set(conn.execute(Compiler(now, SCORES).query(rule)).scalars())
        per_row = set(conn.execute(Compiler(now, SCORES, per_row=True).query(rule)).scalars())
    assert found == per_row, f"set forms and per-row forms disagree on {text}"
    return found, rule


# --- the properties ---------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_compiler_matches_reference(store: Store, data: st.DataObject) -> None:
    world, now = data.draw(worlds(), label="world, now")
    texts = data.draw(st.lists(rules(store.dialect), min_size=1, max_size=6), label="rules")
    with store.begin() as conn:
        world.write(conn)
    for text in texts:
        found, rule = _members(store, text, now)
        assert found == evaluate(rule, world, now, SCORES), text


@SETTINGS
@given(data=st.data())
def test_values_match_reference(store: Store, data: st.DataObject) -> None:
    """Every aggregate's value per customer, not only who passes a threshold."""
    world, now = data.draw(worlds(), label="world, now")
    texts = data.draw(_values(), label="values")
    with store.begin() as conn:
        world.write(conn)
    with store.connect() as conn:
        catalog = load_catalog(conn)
        nodes = [_operand(parse_rule(text, catalog)) for text in texts]
        compiler = Compiler(now, SCORES)
        query = select(customers.c.id, *(compiler.value(node) for node in nodes))
        rows = conn.execute(query).all()
    for customer_id, *found in rows:
        expected = [value_of(node, world, now, customer_id, SCORES) for node in nodes]
        assert found == expected, (customer_id, texts)


@settings(SETTINGS, max_examples=40)
@given(data=st.data())
def test_not_is_the_complement(store: Store, data: st.DataObject) -> None:
    world, now = data.draw(worlds(), label="world, now")
    text = data.draw(rules(store.dialect, depth=2), label="rule")
    with store.begin() as conn:
        world.write(conn)
    matched, rule = _members(store, text, now)
    unmatched, negated = _members(store, f"not ({text})", now)
    assert matched == evaluate(rule, world, now, SCORES)
    assert matched.isdisjoint(unmatched)
    assert matched | unmatched == world.ids()
    assert unmatched == evaluate(negated, world, now, SCORES)
