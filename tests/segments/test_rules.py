"""Segment rules by example, on a small shop written into SQLite and PostgreSQL.

Every case states the members it expects; ``check`` requires the compiled
query *and* the reference evaluator to find exactly those, so the examples
pin down the reference that the property tests trust.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from narrowcast.segments import Compiler, RuleError, load_catalog, parse_rule
from narrowcast.store import Store
from narrowcast.store.schema import customers
from tests.segments.reference import World, evaluate

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
EVERYONE = {"ana", "ben", "cruz", "dora", "eva", "fer"}
MADRID = ZoneInfo("Europe/Madrid")


def shop() -> World:
    """Six customers and their events around ``NOW``; the comments give the totals."""
    world = World(
        attribute_types={"score": "number", "lifestyle": "text", "vip": "bool"},
        property_types={
            kind: {"page": "text", "category": "text", "device": "text", "value": "number"}
            for kind in ("order", "page_view", "cart_add")
        },
    )
    geo = ("country", "region", "city", "neighborhood")
    world.customer(
        "ana",
        **dict(zip(geo, ("ES", "Andalucía", "Sevilla", "Triana"), strict=True)),
        birth_date=date(1990, 6, 15),  # 34 today
        attributes={"score": 8, "lifestyle": "urban", "vip": True},
    )
    world.customer(
        "ben",
        **dict(zip(geo, ("ES", "Andalucía", "Sevilla", "Nervión"), strict=True)),
        birth_date=date(1990, 6, 16),  # 33, 34 tomorrow
        customer_type="corporate",
        attributes={"score": 3, "lifestyle": "rural", "vip": False},
    )
    world.customer(
        "cruz",
        **dict(zip(geo, ("ES", "Madrid", "Madrid", "Centro"), strict=True)),
        birth_date=date(2000, 2, 29),  # 24
        attributes={"lifestyle": None},
    )
    world.customer(
        "dora",
        **dict(zip(geo, ("PT", "Lisboa", "Lisboa", "Alfama"), strict=True)),
        customer_type="government",
        attributes={"score": None},
    )
    world.customer("eva")
    world.customer("fer", country="ES", city="Sevilla")  # no region

    # ana: 3 orders (57.5) until now, 2 within 30 days; one order is in the future.
    world.event("ana", "order", NOW - 2 * HOUR, value=40.0, category="shoes", device="mobile")
    world.event("ana", "order", NOW - 10 * DAY, value=12.5, category="books")
    world.event("ana", "order", NOW - 30 * DAY, value=5.0)  # on the 30d edge: outside
    world.event("ana", "order", NOW + HOUR, value=1000.0, category="shoes")  # ignored
    world.event("ana", "page_view", NOW - DAY + SECOND, page="home")  # 0 whole days
    # ben: one order just inside 30 days; two page views at the same instant.
    world.event("ben", "order", NOW - 30 * DAY + SECOND, value=12.5, category="shoes")
    world.event("ben", "page_view", NOW - DAY, page="cart")
    world.event("ben", "page_view", NOW - DAY, page="home")  # later id: the last one
    # cruz: page views exactly at now (counted), tied; a cart_add long ago.
    world.event("cruz", "page_view", NOW, page="home")
    world.event("cruz", "page_view", NOW, page="checkout")
    world.event("cruz", "cart_add", NOW - 40 * DAY, value=20.0, category="shoes")
    # dora: an order without a value; a page view only in the future.
    world.event("dora", "order", NOW - 3 * DAY, category="books")
    world.event("dora", "page_view", NOW + SECOND, page="home")
    # fer: a cart_add one second more than a day ago.
    world.event("fer", "cart_add", NOW - DAY - SECOND, value=5.0)
    return world


SEGMENTS = {
    "andalusia": "in_geo('ES/Andalucía')",
    "andalusian_buyers": "segment('andalusia') and ever('order', within='30d')",
    "triana_buyers": "segment('andalusian_buyers') and in_geo('ES/Andalucía/Sevilla/Triana')",
}


def members(
    store: Store,
    world: World,
    rule: str,
    now: datetime = NOW,
    segments: dict[str, str] | None = None,
) -> tuple[set[str], set[str]]:
    """(what the compiled query returns, what the reference finds)."""
    with store.begin() as conn:
        world.write(conn)
    with store.connect() as conn:
        tree = parse_rule(rule, load_catalog(conn, segments))
        found = set(conn.execute(Compiler(now).query(tree)).scalars())
    return found, evaluate(tree, world, now)


def check(
    store: Store,
    world: World,
    rule: str,
    expected: set[str],
    now: datetime = NOW,
    segments: dict[str, str] | None = None,
) -> None:
    found, reference = members(store, world, rule, now, segments)
    assert reference == expected, f"reference evaluator: {rule}"
    assert found == expected, f"compiled query: {rule}"


def check_all(
    store: Store,
    world: World,
    cases: list[tuple[str, set[str]]],
    now: datetime = NOW,
    segments: dict[str, str] | None = None,
) -> None:
    """``check`` for many rules on one world, reporting every rule that fails."""
    with store.begin() as conn:
        world.write(conn)
    wrong = []
    with store.connect() as conn:
        catalog = load_catalog(conn, segments)
        for rule, expected in cases:
            tree = parse_rule(rule, catalog)
            found = set(conn.execute(Compiler(now).query(tree)).scalars())
            reference = evaluate(tree, world, now)
            if found != expected or reference != expected:
                wrong.append(
                    f"{rule}\n  expected  {sorted(expected)}\n  compiled  {sorted(found)}"
                    f"\n  reference {sorted(reference)}"
                )
    assert not wrong, "\n".join(wrong)


# --- attributes -----------------------------------------------------------------------


ATTRIBUTES = [
    ("country in ['ES']", {"ana", "ben", "cruz", "fer"}),
    ("country != 'ES'", {"dora"}),  # eva has no country: not different, missing
    ("not (country in ['ES'])", {"dora", "eva"}),
    ("city in ['Madrid', 'Sevilla']", {"ana", "ben", "cruz", "fer"}),
    ("city not in ['Madrid', 'Sevilla']", {"dora"}),
    ("not (city in ['Madrid', 'Sevilla'])", {"dora", "eva"}),
    ("customer_type != 'individual'", {"ben", "dora"}),
    ("customer_type in ['corporate', 'government'] and country in ['PT']", {"dora"}),
    ("score >= 5", {"ana"}),
    ("score < 5", {"ben"}),  # dora's score is null, the others have none
    ("not (score >= 5)", EVERYONE - {"ana"}),
    ("lifestyle != 'urban'", {"ben"}),
    ("lifestyle in ['urban', 'rural'] or score > 100", {"ana", "ben"}),
    ("not (lifestyle != 'urban')", EVERYONE - {"ben"}),
    ("vip", {"ana"}),
    ("not vip", EVERYONE - {"ana"}),
    ("vip != True", {"ben"}),
    ("18 <= age <= 33", {"ben", "cruz"}),
    ("age >= 34", {"ana"}),
    ("not (18 <= age < 34)", {"ana", "dora", "eva", "fer"}),
    (
        "(country in ['ES'] or country in ['PT']) and not (city in ['Lisboa'])",
        EVERYONE - {"dora", "eva"},
    ),
]


def test_attributes(store: Store) -> None:
    check_all(store, shop(), ATTRIBUTES)


DOUBLE_EQUALS = [
    ("country == 'ES' and score == 8", {"ana"}),
    ("not (country == 'ES')", {"dora", "eva"}),
    ("count('order') == 3", {"ana"}),
    ("last('page_view', 'page') == 'home'", {"ana", "ben"}),
    ("vip == True", {"ana"}),
    ("country == \"x' OR '1'='1\"", set()),
]


def test_double_equals(store: Store) -> None:
    check_all(store, shop(), DOUBLE_EQUALS)


# --- age ------------------------------------------------------------------------------


BIRTHDAYS = [
    (date(2024, 6, 14), date(1990, 6, 15), 33),  # the day before the birthday
    (date(2024, 6, 15), date(1990, 6, 15), 34),  # the birthday
    (date(2023, 2, 28), date(2000, 2, 29), 22),  # no 29 February in 2023 …
    (date(2023, 3, 1), date(2000, 2, 29), 23),  # … so a year older on 1 March
    (date(2024, 2, 28), date(2000, 2, 29), 23),
    (date(2024, 2, 29), date(2000, 2, 29), 24),
    (date(2024, 6, 15), date(2024, 6, 15), 0),
]


def test_age_in_whole_years(store: Store) -> None:
    for today, born, years in BIRTHDAYS:
        world = World()
        world.customer("born", birth_date=born)
        world.customer("unknown")
        for clock in ("00:00:00", "23:59:59.999999"):
            now = datetime.fromisoformat(f"{today.isoformat()}T{clock}+00:00")
            cases = [
                (f"age >= {years} and age < {years + 1}", {"born"}),
                (f"not (age in [{years}])", {"unknown"}),
            ]
            check_all(store, world, cases, now)


# --- dates -----------------------------------------------------------------------------

DATES = [
    ("birth_date < '1995-01-01'", {"ana", "ben"}),
    ("'1995-01-01' > birth_date", {"ana", "ben"}),
    ("birth_date >= '1990-06-16'", {"ben", "cruz"}),
    ("birth_date > '2000-02-29'", set()),
    ("birth_date != '1990-06-15'", {"ben", "cruz"}),  # the others have no birth date
    ("not (birth_date < '2000-01-01')", {"cruz", "dora", "eva", "fer"}),
    ("birth_date <= '19900615'", {"ana"}),  # the compact ISO form is a date too
]


def test_dates_compare_with_iso_text(store: Store) -> None:
    check_all(store, shop(), DATES)


def test_dates_in_a_list(store: Store) -> None:
    cases = [
        ("birth_date in ['1990-06-15', '2000-02-29']", {"ana", "cruz"}),
        ("birth_date not in ['1990-06-15']", {"ben", "cruz"}),
    ]
    check_all(store, shop(), cases)


def test_a_date_compared_with_a_text_attribute_is_refused_or_right(store: Store) -> None:
    world = World(attribute_types={"note": "text"})
    world.customer("ana", birth_date=date(1990, 6, 15), attributes={"note": "1990-06-15"})
    world.customer("ben", birth_date=date(1990, 6, 16), attributes={"note": "1990-06-15"})
    try:
        check(store, world, "birth_date <= note", {"ana"})
    except RuleError:
        pass  # refusing it is as good as comparing it right


def test_imported_date_attributes(store: Store) -> None:
    world = World(attribute_types={"signup": "date"})
    world.customer("ana", birth_date=date(1990, 6, 15), attributes={"signup": "2024-01-02"})
    world.customer("ben", attributes={"signup": "2024-06-02"})
    world.customer("cruz")
    cases = [
        ("signup < '2024-06-01'", {"ana"}),
        ("not (signup < '2024-06-01')", {"ben", "cruz"}),
        ("signup > birth_date", {"ana"}),
    ]
    check_all(store, world, cases)


# --- geography ------------------------------------------------------------------------


GEO = [
    ("ES", {"ana", "ben", "cruz", "fer"}),
    ("es", {"ana", "ben", "cruz", "fer"}),
    ("PT", {"dora"}),
    ("ES/Andalucía", {"ana", "ben"}),
    ("ES/Andalucía/Sevilla", {"ana", "ben"}),  # fer is in Sevilla without a region
    ("ES/Andalucía/Sevilla/Triana", {"ana"}),
    ("ES / Madrid / Madrid / Centro", {"cruz"}),
    ("ES/Lisboa", set()),
    ("ES/andalucía", set()),  # only the country code is case-insensitive
]


def test_in_geo(store: Store) -> None:
    cases = [(f"in_geo({path!r})", expected) for path, expected in GEO]
    cases += [(f"not in_geo({path!r})", EVERYONE - expected) for path, expected in GEO]
    check_all(store, shop(), cases)


# --- event aggregates -----------------------------------------------------------------


AGGREGATES = [
    # count: 0 when none, the future never counts
    ("count('order') >= 3", {"ana"}),
    ("count('order') < 1", {"cruz", "eva", "fer"}),
    ("count('page_view') >= 2", {"ben", "cruz"}),
    # sum: 0 when none, and when no event has the property
    ("sum('order', 'value') > 57", {"ana"}),
    ("sum('order', 'value') < 1", {"cruz", "dora", "eva", "fer"}),
    # avg / min / max: missing when none
    ("avg('order', 'value') > 19 and avg('order', 'value') < 19.2", {"ana"}),
    ("avg('order', 'value') < 100", {"ana", "ben"}),
    ("not (avg('order', 'value') < 100)", {"cruz", "dora", "eva", "fer"}),
    ("min('order', 'value') <= 5", {"ana"}),
    ("max('order', 'value') >= 12.5", {"ana", "ben"}),
    ("max('order', 'value') > 40", set()),  # 1000 is in the future
    # distinct: 0 when none
    ("distinct('order', 'category') >= 2", {"ana"}),
    ("distinct('order', 'category') < 1", {"cruz", "eva", "fer"}),
    ("distinct('page_view', 'page') >= 2", {"ben", "cruz"}),
    # ever
    ("ever('page_view')", {"ana", "ben", "cruz"}),  # dora's is in the future
    ("not ever('order')", {"cruz", "eva", "fer"}),
    ("ever('cart_add') and ever('page_view')", {"cruz"}),
    # days_since / days_since_first: floor of whole days, missing when none
    ("days_since('page_view') < 1", {"ana", "cruz"}),
    ("days_since('page_view') >= 1", {"ben"}),
    ("not (days_since('page_view') >= 0)", {"dora", "eva", "fer"}),
    ("days_since('cart_add') >= 1 and days_since('cart_add') < 2", {"fer"}),
    ("days_since_first('order') >= 30", {"ana"}),
    ("days_since_first('order') >= 29 and days_since_first('order') < 30", {"ben"}),
    ("days_since('order') <= 3 and days_since_first('order') <= 3", {"dora"}),
    # last: the latest event's property, ties to the later id, missing when absent
    ("last('page_view', 'page') in ['home']", {"ana", "ben"}),
    ("last('page_view', 'page') in ['checkout']", {"cruz"}),
    ("last('page_view', 'page') != 'home'", {"cruz"}),
    ("not (last('page_view', 'page') in ['home'])", {"cruz", "dora", "eva", "fer"}),
    ("last('order', 'value') >= 0", {"ana", "ben"}),  # dora's latest order has none
    ("last('order', 'value') > 39", {"ana"}),
    # aggregates compared with each other
    ("count('order') > count('page_view')", {"ana", "dora"}),
    ("sum('order', 'value') >= sum('cart_add', 'value')", EVERYONE - {"cruz", "fer"}),
]


def test_aggregates(store: Store) -> None:
    check_all(store, shop(), AGGREGATES)


WINDOWS_ARE_HALF_OPEN = [
    ("count('order', within='30d') >= 2", {"ana"}),  # ana's third is on the edge
    ("count('order', within='30d') >= 1", {"ana", "ben", "dora"}),  # ben's is 1s inside
    ("count('order', within='720h') >= 1", {"ana", "ben", "dora"}),
    ("count('order', within='29d') >= 1", {"ana", "dora"}),
    ("count('order', within='1w') >= 1", {"ana", "dora"}),
    ("count('order', within='2h') >= 1", set()),  # exactly 2 hours ago: outside
    ("count('order', within='3h') >= 1", {"ana"}),
    ("count('page_view', within='1h') >= 2", {"cruz"}),  # exactly now: inside
    ("count('page_view', within='24h') >= 1", {"ana", "cruz"}),  # ben's is on the edge
    ("count('page_view', within='1d') >= 1", {"ana", "cruz"}),
    ("ever('cart_add', within='1d')", set()),
    ("ever('cart_add', within='25h')", {"fer"}),
    ("sum('order', 'value', within='30d') >= 52.5", {"ana"}),
    ("avg('order', 'value', within='30d') > 26", {"ana"}),
    ("not (min('order', 'value', within='12h') < 100)", EVERYONE - {"ana"}),
    ("days_since_first('order', within='30d') < 11", {"ana", "dora"}),
]


def test_windows_are_half_open(store: Store) -> None:
    """within='30d' means (now − 30 days, now]."""
    check_all(store, shop(), WINDOWS_ARE_HALF_OPEN)


PROPERTY_FILTERS = [
    ("count('order', category='shoes') >= 1", {"ana", "ben"}),
    ("count('order', category='shoes') >= 2", set()),  # ana's second is in the future
    ("count('order', category='books', within='7d') >= 1", {"dora"}),
    ("count('order', category='shoes', device='mobile') >= 1", {"ana"}),
    ("count('order', value=12.5) >= 1", {"ana", "ben"}),
    ("count('order', value=12.5, within='7d') >= 1", set()),
    ("ever('cart_add', value=5)", {"fer"}),
    ("ever('cart_add', value=5.0, category='shoes')", set()),
    ("sum('order', 'value', category='shoes') >= 40", {"ana"}),
    ("days_since('order', category='books') >= 3", {"ana", "dora"}),
    ("distinct('order', 'device', category='shoes') < 1", EVERYONE - {"ana"}),
    ("last('page_view', 'page', page='cart') in ['cart']", {"ben"}),
    ("not ever('page_view', page=\"x' OR '1'='1\")", EVERYONE),
]


def test_property_filters(store: Store) -> None:
    check_all(store, shop(), PROPERTY_FILTERS)


STORE_AVG = [
    # Orders until now: 40, 12.5, 5 (ana) and 12.5 (ben): 17.5; dora's has no value.
    ("avg('order', 'value') > store_avg('order', 'value')", {"ana"}),
    ("store_avg('order', 'value') > 17.4 and store_avg('order', 'value') < 17.6", EVERYONE),
    # Within 7 days only ana's 40.
    ("max('order', 'value') >= store_avg('order', 'value', within='7d')", {"ana"}),
    ("store_avg('order', 'value', within='7d') > 39", EVERYONE),
    # Within 1 hour there is none: missing, so neither side of a comparison holds.
    ("store_avg('order', 'value', within='1h') >= 0", set()),
    ("not (store_avg('order', 'value', within='1h') >= 0)", EVERYONE),
    ("store_avg('cart_add', 'value') > 12 and store_avg('cart_add', 'value') < 13", EVERYONE),
]


def test_store_avg(store: Store) -> None:
    check_all(store, shop(), STORE_AVG)


# --- whole days around DST and exact boundaries --------------------------------------


WHOLE_DAYS = [
    # Spring forward: one calendar day before in Madrid is only 23 hours.
    (datetime(2024, 3, 31, 12, tzinfo=MADRID), datetime(2024, 3, 30, 12, tzinfo=MADRID), 0),
    (datetime(2024, 3, 31, 12, tzinfo=MADRID), datetime(2024, 3, 30, 11, tzinfo=MADRID), 1),
    # Fall back: one calendar day before is 25 hours.
    (datetime(2024, 10, 27, 12, tzinfo=MADRID), datetime(2024, 10, 26, 12, tzinfo=MADRID), 1),
    (datetime(2024, 10, 27, 12, tzinfo=MADRID), datetime(2024, 10, 26, 13, 0, 1, tzinfo=MADRID), 0),
    # Exact multiples of a day, and a millisecond or a second short of them.
    (NOW, NOW - DAY, 1),
    (NOW, NOW - DAY + timedelta(milliseconds=1), 0),
    (NOW, NOW - 7 * DAY, 7),
    (NOW, NOW - 7 * DAY + timedelta(milliseconds=1), 6),
    (NOW, NOW - 45 * DAY - SECOND, 45),
    (NOW, NOW - 45 * DAY + SECOND, 44),
    (NOW, NOW, 0),
]


def test_days_since_is_floor_of_24_hour_days(store: Store) -> None:
    since, first = "days_since('cart_add')", "days_since_first('cart_add')"
    for now, then, days in WHOLE_DAYS:
        world = World()
        world.customer("eva")
        world.customer("never")
        world.event("eva", "cart_add", then)
        world.event("eva", "cart_add", then.astimezone(UTC) - 100 * DAY)
        world.event("eva", "cart_add", now.astimezone(UTC) + SECOND)  # ignored
        cases = [
            (f"{since} >= {days} and {since} < {days + 1}", {"eva"}),
            (f"{first} >= {days + 100} and {first} < {days + 101}", {"eva"}),
        ]
        check_all(store, world, cases, now)


def test_days_since_below_a_millisecond(store: Store) -> None:
    world = World()
    world.customer("eva")
    world.event("eva", "cart_add", NOW - DAY + timedelta(microseconds=400))
    check(store, world, "days_since('cart_add') < 1", {"eva"})


# --- segments ---------------------------------------------------------------------------


SEGMENTS_ARE_INLINED = [
    ("segment('andalusia')", {"ana", "ben"}),
    ("not segment('andalusia')", EVERYONE - {"ana", "ben"}),
    ("segment('andalusian_buyers')", {"ana", "ben"}),
    ("segment('triana_buyers')", {"ana"}),
    ("segment('andalusia') and not segment('triana_buyers')", {"ben"}),
    ("segment('andalusia') or country in ['PT']", {"ana", "ben", "dora"}),
    ("segment('andalusia') in [False] and ever('order')", {"dora"}),
]


def test_segments_are_inlined(store: Store) -> None:
    check_all(store, shop(), SEGMENTS_ARE_INLINED, segments=SEGMENTS)


def test_a_micro_segment_narrows_its_macro_segment(store: Store) -> None:
    world = shop()
    macro, _ = members(store, world, "segment('andalusia')", segments=SEGMENTS)
    middle, _ = members(store, world, "segment('andalusian_buyers')", segments=SEGMENTS)
    micro, _ = members(store, world, "segment('triana_buyers')", segments=SEGMENTS)
    assert micro < macro
    assert micro <= middle <= macro


# --- bugs ---------------------------------------------------------------------------------


def test_a_window_is_absolute_whatever_the_zone_of_now(store: Store) -> None:
    noon = datetime(2024, 3, 31, 12, tzinfo=MADRID)  # DST began at 02:00 that morning
    world = World()
    world.customer("ana")
    world.customer("ben")
    world.event("ana", "order", noon.astimezone(UTC) - timedelta(hours=23, minutes=30))
    world.event("ben", "order", noon.astimezone(UTC) - timedelta(hours=24))
    rule = "count('order', within='24h') >= 1"
    check(store, world, rule, {"ana"}, noon.astimezone(UTC))
    check(store, world, rule, {"ana"}, noon)


def test_age_is_the_same_whatever_the_zone_of_now(store: Store) -> None:
    instant = datetime(2024, 6, 15, 1, 30, tzinfo=UTC)  # still 14 June in São Paulo
    world = World()
    world.customer("ana", birth_date=date(1990, 6, 15))
    check(store, world, "age >= 34", {"ana"}, instant)
    check(store, world, "age >= 34", {"ana"}, instant.astimezone(ZoneInfo("America/Sao_Paulo")))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("True", EVERYONE),
        ("not False", EVERYONE),
        ("False", set()),
        ("ever('cart_add') or False", {"cruz", "fer"}),
    ],
)
def test_constant_conditions(store: Store, rule: str, expected: set[str]) -> None:
    check(store, shop(), rule, expected)


def _names_world(name: str) -> World:
    world = World(property_types={"page_view": {name: "text"}})
    world.customer("ana")
    world.customer("ben")
    world.event("ana", "page_view", NOW - HOUR, **{name: "yes"})
    world.event("ben", "page_view", NOW - HOUR)
    return world


def _name_cases(name: str) -> list[tuple[str, set[str]]]:
    return [
        (f"last('page_view', {name!r}) in ['yes']", {"ana"}),
        (f"distinct('page_view', {name!r}) >= 1", {"ana"}),
    ]


def test_property_names_with_sql_characters_are_bound(store: Store) -> None:
    for name in ("it's", "x' OR '1'='1", "a.b[0]", "$.x", "-- ;"):
        check_all(store, _names_world(name), _name_cases(name))
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 2


def test_property_names_with_double_quotes_are_bound(store: Store) -> None:
    name = 'say "hi"'
    check_all(store, _names_world(name), _name_cases(name))


# --- one scan for several event conditions ----------------------------------------------

SHARED_SCANS = [
    "ever('order') and not ever('cart_add')",
    "ever('order') or ever('page_view') or ever('cart_add')",  # every scanned type: TRUE
    "(ever('order') or ever('page_view') or ever('cart_add')) and count('order') >= 2",
    "(ever('order') or ever('page_view')) and not ever('cart_add')",
    "ever('order', within='30d') or ever('page_view') or ever('cart_add')",  # a window
    "ever('order', category='shoes') or ever('page_view') or ever('cart_add')",  # a filter
    "not (ever('order') or ever('page_view') or ever('cart_add'))",
    "5 <= sum('order', 'value') <= 60",
    "count('order') < 2 and count('page_view') < 2",
    "count('order') == 0 or avg('order', 'value') > 20",
    "days_since('page_view') <= 1 and not days_since('order') < 5",
    "country in ['ES'] and count('order') >= 1 and count('page_view') >= 1",
    "intent == 'cold' and (ever('page_view') or ever('cart_add') or ever('order'))",
]


def test_conditions_sharing_one_scan_match_the_reference(store: Store) -> None:
    world = shop()
    with store.begin() as conn:
        world.write(conn)
    wrong = []
    with store.connect() as conn:
        catalog = load_catalog(conn)
        for rule in SHARED_SCANS:
            tree = parse_rule(rule, catalog)
            found = set(conn.execute(Compiler(NOW).query(tree)).scalars())
            per_row = set(conn.execute(Compiler(NOW, per_row=True).query(tree)).scalars())
            reference = evaluate(tree, world, NOW)
            if not found == per_row == reference:
                wrong.append(f"{rule}: {sorted(found)} {sorted(per_row)} {sorted(reference)}")
    assert not wrong, "\n".join(wrong)
    assert evaluate(parse_rule(SHARED_SCANS[1], catalog), world, NOW) == {
        "ana",
        "ben",
        "cruz",
        "dora",
        "fer",
    }
