"""Every persona of the demo shop is in the store and findable by its defining behaviour.

One shop is generated per database for the whole module (it is only read),
and every check is the SQL a segment would run, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, extract, func, select

from narrowcast.demo import PERSONAS, generate_demo
from narrowcast.demo.geography import COUNTRIES, locales_of, zones_of
from narrowcast.demo.personas import BY_NAME
from narrowcast.ingest.events import VOCABULARY
from narrowcast.store import Store
from narrowcast.store.schema import (
    attribute_keys,
    consents,
    customers,
    device_tokens,
    event_properties,
    events,
    metadata,
)

NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
SIZE = 1_500
PERSONA = customers.c.attributes["persona"].as_string()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("shop") / "shop.db"
        shutil.copy(template, path)
        store = Store(f"sqlite:///{path}")
    else:
        store = Store(request.getfixturevalue("postgres_url"))
        names = ", ".join(table.name for table in metadata.sorted_tables)
        with store.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    generate_demo(store, customers=SIZE, seed=11, now=NOW)
    yield store
    store.dispose()


@pytest.fixture
def conn(shop: Store) -> Iterator[Connection]:
    with shop.connect() as connection:
        yield connection


def _members(conn: Connection, persona: str) -> set[str]:
    return set(conn.scalars(select(customers.c.id).where(PERSONA == persona)))


def _per_customer(conn: Connection, persona: str, *conditions: Any) -> dict[str, int]:
    """Events matching ``conditions`` per member of ``persona`` (members without any: 0)."""
    query = (
        select(events.c.customer_id, func.count())
        .join(customers, customers.c.id == events.c.customer_id)
        .where(PERSONA == persona, *conditions)
        .group_by(events.c.customer_id)
    )
    counts = {member: 0 for member in _members(conn, persona)}
    counts.update({customer: int(n) for customer, n in conn.execute(query)})
    return counts


def test_every_persona_is_present_in_about_its_share(conn: Connection) -> None:
    found = dict(conn.execute(select(PERSONA, func.count()).group_by(PERSONA)).all())
    assert set(found) == {p.name for p in PERSONAS}
    for persona in PERSONAS:
        assert abs(found[persona.name] / SIZE - persona.weight) < 0.02 + persona.weight / 3


def test_cart_abandoners_left_a_cart_in_the_last_week_and_bought_nothing_after(
    conn: Connection,
) -> None:
    last_cart = (
        select(events.c.customer_id, func.max(events.c.ts).label("ts"))
        .where(events.c.type == "cart_add", events.c.ts >= NOW - timedelta(days=7))
        .group_by(events.c.customer_id)
        .subquery()
    )
    abandoners = _members(conn, "cart_abandoner")
    with_cart = set(conn.scalars(select(last_cart.c.customer_id)))
    bought_after = set(
        conn.scalars(
            select(events.c.customer_id)
            .join(last_cart, last_cart.c.customer_id == events.c.customer_id)
            .where(events.c.type == "order", events.c.ts > last_cart.c.ts)
        )
    )
    assert abandoners and abandoners <= with_cart
    assert not abandoners & bought_after


def test_lost_customers_bought_but_not_in_the_last_180_days(conn: Connection) -> None:
    recent = _per_customer(
        conn, "lost_customer", events.c.type == "order", events.c.ts >= NOW - timedelta(180)
    )
    ever = _per_customer(conn, "lost_customer", events.c.type == "order")
    assert set(recent.values()) == {0}
    assert min(ever.values()) >= 1


def test_one_time_buyers_have_one_visit_and_one_order(conn: Connection) -> None:
    orders = _per_customer(conn, "one_time_buyer", events.c.type == "order")
    visits = _per_customer(conn, "one_time_buyer", events.c.type == "session_start")
    assert set(orders.values()) == {1}
    assert set(visits.values()) == {1}


def test_frequent_buyers_ordered_at_least_five_times_in_six_months(conn: Connection) -> None:
    recent = _per_customer(
        conn, "frequent_buyer", events.c.type == "order", events.c.ts >= NOW - timedelta(180)
    )
    assert min(recent.values()) >= 5


def test_seasonal_buyers_order_only_in_november_and_december(conn: Connection) -> None:
    months = conn.scalars(
        select(extract("month", events.c.ts))
        .join(customers, customers.c.id == events.c.customer_id)
        .where(PERSONA == "seasonal_buyer", events.c.type == "order")
        .distinct()
    ).all()
    assert {int(month) for month in months} == {11, 12}


def test_coupon_hunters_never_order_without_a_coupon(conn: Connection) -> None:
    coupon = events.c.properties["coupon"].as_string()
    without = _per_customer(conn, "coupon_hunter", events.c.type == "order", coupon.is_(None))
    assert set(without.values()) == {0}
    others = conn.scalar(select(func.count()).where(events.c.type == "order", coupon.is_not(None)))
    assert others and others > sum(_per_customer(conn, "coupon_hunter").values()) / 10


def test_b2b_accounts_are_corporate_or_government_with_tickets_of_2000_to_10000(
    conn: Connection,
) -> None:
    types = conn.scalars(
        select(customers.c.customer_type).where(PERSONA == "b2b_account").distinct()
    ).all()
    assert set(types) == {"corporate", "government"}
    low, high = conn.execute(
        select(func.min(events.c.value), func.max(events.c.value))
        .join(customers, customers.c.id == events.c.customer_id)
        .where(events.c.type == "order", customers.c.customer_type != "individual")
    ).one()
    assert 2000 <= low and high <= 10000
    # And every ticket that size belongs to such an account.
    individual_max = conn.scalar(
        select(func.max(events.c.value))
        .join(customers, customers.c.id == events.c.customer_id)
        .where(events.c.type == "order", customers.c.customer_type == "individual")
    )
    assert individual_max < 2000


def test_big_spenders_and_vips_order_above_the_shop_average(conn: Connection) -> None:
    """Every order of theirs beats the average order, B2B tickets included."""
    average = conn.scalar(select(func.avg(events.c.value)).where(events.c.type == "order"))
    smallest = dict(
        conn.execute(
            select(PERSONA, func.min(events.c.value))
            .join(customers, customers.c.id == events.c.customer_id)
            .where(events.c.type == "order", PERSONA.in_(["big_spender", "vip"]))
            .group_by(PERSONA)
        ).all()
    )
    assert smallest["big_spender"] > average
    assert smallest["vip"] > average
    vip_orders = _per_customer(conn, "vip", events.c.type == "order")
    assert min(vip_orders.values()) >= 8


def test_recommendation_clickers_click_but_never_buy(conn: Connection) -> None:
    clicks = _per_customer(conn, "recommendation_clicker", events.c.type == "recommendation_click")
    orders = _per_customer(conn, "recommendation_clicker", events.c.type == "order")
    assert min(clicks.values()) >= 1
    assert set(orders.values()) == {0}


def test_heavy_browsers_view_many_pages_and_stay_long_on_products(conn: Connection) -> None:
    views = _per_customer(
        conn,
        "heavy_browser",
        events.c.type.in_(["page_view", "product_view"]),
        events.c.ts >= NOW - timedelta(days=90),
    )
    assert min(views.values()) >= 12
    dwell = events.c.properties["duration_s"].as_float()
    by_persona = dict(
        conn.execute(
            select(PERSONA, func.avg(dwell))
            .join(customers, customers.c.id == events.c.customer_id)
            .where(events.c.type == "product_view")
            .group_by(PERSONA)
        ).all()
    )
    heavy = by_persona.pop("heavy_browser")
    assert heavy >= 150 and heavy > 2 * max(by_persona.values())


@pytest.mark.parametrize(
    ("persona", "source"), [("search_visitor", "search"), ("social_visitor", "social")]
)
def test_search_and_social_visitors_arrive_from_there(
    conn: Connection, persona: str, source: str
) -> None:
    visit_source = events.c.properties["source"].as_string()
    shares = dict(
        conn.execute(
            select(visit_source, func.count())
            .join(customers, customers.c.id == events.c.customer_id)
            .where(events.c.type == "session_start", PERSONA == persona)
            .group_by(visit_source)
        ).all()
    )
    assert shares[source] / sum(shares.values()) > 0.7


def test_nps_answers_split_into_promoters_passives_and_detractors(conn: Connection) -> None:
    score = events.c.properties["score"].as_integer()
    rows = conn.execute(
        select(PERSONA, score)
        .join(customers, customers.c.id == events.c.customer_id)
        .where(events.c.type == "nps_response")
    ).all()
    classes: dict[str, Counter[str]] = defaultdict(Counter)
    for persona, value in rows:
        assert 0 <= value <= 10
        classes[persona][
            "promoter" if value >= 9 else "passive" if value >= 7 else "detractor"
        ] += 1
    total = sum(classes.values(), Counter())
    assert min(total["promoter"], total["passive"], total["detractor"]) > 20

    def share(persona: str, kind: str) -> float:
        return classes[persona][kind] / sum(classes[persona].values())

    assert share("vip", "promoter") > 0.5 > share("lost_customer", "promoter")
    assert share("lost_customer", "detractor") > 0.4 > share("vip", "detractor")


def test_time_zones_and_locales_fit_each_country(conn: Connection) -> None:
    places = conn.execute(
        select(
            customers.c.country, customers.c.region, customers.c.timezone, customers.c.locale
        ).distinct()
    ).all()
    for country, region, zone, locale in places:
        assert zone in zones_of(country), (country, zone)
        assert locale in locales_of(country), (country, locale)
        if region == "Canarias":
            assert zone == "Atlantic/Canary"
    assert {country for country, *_ in places} == {c.code for c in COUNTRIES}
    assert {locale[:2] for *_, locale in places} == {"es", "en", "pl"}
    assert {zone for _, _, zone, _ in places} >= {
        "Europe/Madrid",
        "Atlantic/Canary",
        "America/Mexico_City",
        "Europe/Warsaw",
        "Europe/London",
        "America/New_York",
        "America/Los_Angeles",
    }
    hierarchy = conn.execute(
        select(customers.c.neighborhood, customers.c.city, customers.c.region).where(
            customers.c.neighborhood.is_(None) | customers.c.city.is_(None)
        )
    ).all()
    assert hierarchy == []


def test_visits_start_in_each_personas_local_active_hours(conn: Connection) -> None:
    rows = conn.execute(
        select(PERSONA, customers.c.timezone, events.c.ts)
        .join(customers, customers.c.id == events.c.customer_id)
        .where(events.c.type == "session_start")
    ).all()
    inside: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for persona, zone, ts in rows:
        local = ts.astimezone(ZoneInfo(zone))
        total[persona] += 1
        inside[persona] += local.hour in BY_NAME[persona].hours
        if persona == "b2b_account":
            assert local.weekday() < 5, local
    for persona in total:
        assert inside[persona] / total[persona] > 0.85, persona


def test_each_persona_is_reached_best_through_its_channel(conn: Connection) -> None:
    """The channel of a visit: the email or push that brought it, else the app, else the web."""
    source = events.c.properties["source"].as_string()
    platform = events.c.properties["platform"].as_string()
    rows = conn.execute(
        select(PERSONA, source, platform, func.count())
        .join(customers, customers.c.id == events.c.customer_id)
        .where(events.c.type == "session_start")
        .group_by(PERSONA, source, platform)
    ).all()
    visits: dict[str, Counter[str]] = defaultdict(Counter)
    for persona, how, where, n in rows:
        channel = how if how in ("email", "push") else "web" if where == "web" else "in_app"
        visits[persona][channel] += n
    shop = sum(visits.values(), Counter())
    for persona, channels in visits.items():
        preferred = BY_NAME[persona].channel
        share = channels[preferred] / channels.total()
        assert share > 1.3 * shop[preferred] / shop.total(), (persona, channels)


def test_events_follow_the_standard_vocabulary(conn: Connection) -> None:
    rows = conn.execute(select(events.c.type, events.c.ts, events.c.value, events.c.properties))
    earliest = NOW - timedelta(days=740)
    count = 0
    for type_, ts, value, properties in rows:
        count += 1
        checks = VOCABULARY[type_]
        for key, check in checks.items():
            if key in properties:
                assert check(properties[key], key) == properties[key]
        assert earliest < ts < NOW
        assert value == properties.get("value")
    assert count > 10 * SIZE
    orders = conn.execute(
        select(events.c.properties).where(events.c.type == "order").limit(50)
    ).scalars()
    for order in orders:
        assert {"value", "currency", "items", "category", "brand", "device", "channel"} <= set(
            order
        )


def test_cart_adds_and_visits_come_before_the_customer_was_last_updated(
    conn: Connection,
) -> None:
    late = conn.scalar(
        select(func.count())
        .select_from(events.join(customers, customers.c.id == events.c.customer_id))
        .where((events.c.ts > customers.c.updated_at) | (events.c.ts < customers.c.created_at))
    )
    assert late == 0


def test_consents_tokens_and_catalogues(conn: Connection) -> None:
    granted = dict(
        conn.execute(
            select(consents.c.channel, func.count())
            .where(consents.c.granted, consents.c.purpose == "marketing")
            .group_by(consents.c.channel)
        ).all()
    )
    assert granted["email"] > 0.6 * SIZE
    assert 0 < granted["push"] < granted["email"] / 2
    assert set(conn.scalars(select(consents.c.source).distinct())) == {"demo"}
    push_without_token = conn.scalar(
        select(func.count()).where(
            consents.c.channel == "push",
            ~consents.c.customer_id.in_(select(device_tokens.c.customer_id)),
        )
    )
    assert push_without_token == 0
    platforms = dict(
        conn.execute(
            select(device_tokens.c.platform, func.count()).group_by(device_tokens.c.platform)
        ).all()
    )
    assert set(platforms) == {"ios", "android"}
    invalid = conn.scalar(select(func.count()).where(device_tokens.c.invalidated_at.is_not(None)))
    assert 0 < invalid < sum(platforms.values()) / 4
    catalogue = set(
        conn.execute(
            select(
                event_properties.c.type, event_properties.c.property, event_properties.c.value_type
            )
        ).all()
    )
    assert {
        ("order", "value", "number"),
        ("order", "coupon", "text"),
        ("nps_response", "score", "number"),
        ("page_view", "page", "text"),
    } <= catalogue
    keys = dict(conn.execute(select(attribute_keys.c.key, attribute_keys.c.value_type)).all())
    assert keys["persona"] == "text" and keys["has_app"] == "bool"
    assert keys["household_size"] == "number"
