"""One demo customer's life in the shop: profile, visits, orders and what followed.

Everything about customer ``number`` is drawn from its own random generator,
seeded with ``"{seed}:{number}"``: the same seed and the same ``now`` give
the same customer whatever else is generated, in whatever order, and a run
of a million customers never has to remember one it has finished.

Times are chosen in the customer's own zone — a day some days before ``now``
and a local hour the persona is active in — and converted to UTC, so an
evening shopper in Los Angeles and one in Warsaw are nine hours apart in the
store, as they would be in a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from narrowcast.demo.catalogue import (
    BUSINESS_REFERRERS,
    COUPONS,
    CURRENCY,
    LIFESTYLE_CATEGORIES,
    PAGES_WITH_CATEGORY,
    PRODUCTS,
    REFERRERS,
    SEASON_COUPONS,
    Product,
)
from narrowcast.demo.chance import Chance
from narrowcast.demo.geography import draw_address
from narrowcast.demo.people import draw_organisation, draw_person, work_email
from narrowcast.demo.personas import PERSONA_WEIGHTS, Persona

DemoEvent = tuple[str, datetime, dict[str, Any]]
"""(type, instant in UTC, properties)."""

_STRAY_VISITS = 0.06
"""Share of visits at a random hour: real people do not keep perfect schedules."""
_NPS_SCORES = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}
_SEASON = ((11, 5), (12, 22))
_LAST_MINUTE = timedelta(minutes=1)
# Building a timedelta costs ten times adding one; every gap within a visit is below 1,024 s.
_SECONDS = tuple(timedelta(seconds=s) for s in range(1024))


@dataclass(slots=True)
class DemoCustomer:
    number: int
    persona: Persona
    row: dict[str, Any]
    """A ``customers`` row."""
    events: list[DemoEvent]
    consents: list[dict[str, Any]]
    token: dict[str, Any] | None
    """A ``device_tokens`` row, for customers with the app."""


def customer_id(number: int) -> str:
    return f"demo-{number:06d}"


def draw_customer(seed: int, number: int, now: datetime) -> DemoCustomer:
    """Customer ``number`` (from 1) of the demo shop with this seed, as of ``now``."""
    return _Life(Chance(f"{seed}:{number}"), number, now.astimezone(UTC)).draw()


class _Life:
    """The drawing of one customer; holds what every step needs."""

    def __init__(self, rng: Chance, number: int, now: datetime) -> None:
        self.rng = rng
        self.number = number
        self.now = now
        self.persona = persona = PERSONA_WEIGHTS.pick(rng)
        self.address = draw_address(rng)
        self.zone = ZoneInfo(self.address.timezone)
        self.today = now.astimezone(self.zone).date()
        self.customer_type = persona.customer_types.pick(rng)
        self.lifestyle = persona.lifestyles.pick(rng)
        self.app_os: str | None = None
        if rng.random() < persona.app_rate:
            self.app_os = "ios" if rng.random() < self.address.ios_share else "android"
        categories = LIFESTYLE_CATEGORIES[self.lifestyle] + persona.categories
        self.favourites = [rng.one_of(PRODUCTS[rng.one_of(categories)]) for _ in range(4)]
        self.categories = categories
        self.typical_value = rng.uniform(*persona.order_value)
        self.events: list[DemoEvent] = []
        self.app_visits: list[datetime] = []
        self.first_source = ""

    def draw(self) -> DemoCustomer:
        rng, persona = self.rng, self.persona
        visits = self._plan()
        orders: list[tuple[int, float, int]] = []
        later: list[DemoEvent] = []
        for days_back, kind in visits:
            placed = self._visit(days_back, kind)
            if placed is not None:
                orders.append((days_back, *placed))
        for days_back, value, items in orders:
            if rng.random() < persona.return_rate and days_back > 20:
                when = self._instant(days_back - rng.between(3, 20), rng.between(9, 19))
                share = rng.one_of((0.25, 0.5, 1.0))
                later.append(
                    (
                        "return",
                        when,
                        {
                            "value": round(value * share, 2),
                            "currency": CURRENCY,
                            "items": max(1, round(items * share)),
                        },
                    )
                )
        if rng.random() < persona.nps_rate:
            anchor = orders[-1][0] if orders else visits[-1][0]
            days_back = anchor - rng.between(1, 6)
            if days_back >= 1:
                low, high = _NPS_SCORES[persona.nps.pick(rng)]
                score = rng.between(low, high)
                later.append(("nps_response", self._visit_start(days_back), {"score": score}))
        self.events.extend(later)
        return self._customer()

    # --- when -----------------------------------------------------------------

    def _plan(self) -> list[tuple[int, str]]:
        """(days before today, "order" | "browse" | "cart") per visit, oldest first."""
        rng, persona = self.rng, self.persona
        low, high = persona.window
        visits = [
            (self._season_day() if persona.seasonal else rng.between(low, high), "order")
            for _ in range(rng.between(*persona.orders))
        ]
        visits += [(rng.between(low, high), "browse") for _ in range(rng.between(*persona.browses))]
        if persona.abandons_cart:
            # The persona's window starts a week back, so this is the latest visit.
            visits.append((rng.between(1, 6), "cart"))
        visits.sort(key=lambda visit: -visit[0])
        return visits

    def _season_day(self) -> int:
        """Days back to a day in one of the last two Christmas seasons."""
        yesterday = self.today - timedelta(days=1)
        (start_month, start_day), (end_month, end_day) = _SEASON
        years = [
            year
            for year in range(self.today.year, self.today.year - 3, -1)
            if date(year, start_month, start_day) <= yesterday
        ][:2]
        year = self.rng.one_of(years)
        first = date(year, start_month, start_day)
        last = min(date(year, end_month, end_day), yesterday)
        return (self.today - first).days - self.rng.between(0, (last - first).days)

    def _visit_start(self, days_back: int) -> datetime:
        rng = self.rng
        hour = rng.one_of(self.persona.hours)
        if rng.random() < _STRAY_VISITS:
            hour = rng.between(7, 23)
        return self._instant(days_back, hour)

    def _instant(self, days_back: int, hour: int) -> datetime:
        day = self.today - timedelta(days=days_back)
        if self.persona.weekdays_only and day.weekday() >= 5:
            day -= timedelta(days=day.weekday() - 4)
        moment = time(hour, self.rng.between(0, 59), self.rng.between(0, 59))
        return datetime.combine(day, moment, self.zone).astimezone(UTC)

    # --- what -----------------------------------------------------------------

    def _visit(self, days_back: int, kind: str) -> tuple[float, int] | None:
        """Emit one visit's events; for an order, return its (value, items)."""
        rng, persona = self.rng, self.persona
        first_event = len(self.events)
        at = self._visit_start(days_back)
        source = persona.sources.pick(rng)
        if source == "push" and self.app_os is None:
            source = "direct"
        if source == "push":
            device, in_app = "mobile", True
        else:
            device = persona.devices.pick(rng)
            in_app = self.app_os is not None and device != "desktop" and rng.random() < 0.85
        if in_app:
            self.app_visits.append(at)
        self.first_source = self.first_source or source
        session: dict[str, Any] = {
            "device": device,
            "platform": self.app_os if in_app else "web",
            "source": source,
        }
        referrers = BUSINESS_REFERRERS if self.customer_type != "individual" else REFERRERS
        if source in referrers:
            session["referrer"] = referrers[source].pick(rng)
        if source == "search":
            product = rng.one_of(self.favourites)
            session["query"] = (
                f"{product.brand} {product.name}".lower() if rng.random() < 0.5 else product.name
            )
        self._emit("session_start", at, session)
        at += _SECONDS[rng.between(2, 20)]

        buying = kind != "browse"
        views = 0 if buying else rng.between(*persona.views)
        for _ in range(views):
            if rng.random() < persona.product_share:
                at = self._product_view(at, self._product())
            else:
                page = rng.one_of(persona.pages)
                duration = rng.between(5, 120)
                view: dict[str, Any] = {"page": page, "duration_s": duration}
                if page in PAGES_WITH_CATEGORY:
                    view["category"] = rng.one_of(self.categories)
                self._emit("page_view", at, view)
                at += _SECONDS[duration + rng.between(2, 15)]
        if rng.random() < persona.rec_click_rate:
            product = self._product()
            self._emit("recommendation_click", at, _describe(product))
            at = self._product_view(at + _SECONDS[rng.between(1, 5)], product)
        if not buying and rng.random() < persona.cart_rate:
            kind, buying = "cart", True

        placed = None
        if buying:
            product = rng.one_of(self.favourites)
            at = self._product_view(at, product)
            value = self._order_value()
            items = rng.between(*persona.items)
            cart = {
                **_describe(product),
                "value": value,
                "currency": CURRENCY,
                "quantity": items,
            }
            self._emit("cart_add", at, cart)
            at += _SECONDS[rng.between(10, 120)]
            checkout = {"value": value, "currency": CURRENCY, "items": items}
            if kind == "order" or rng.random() < 0.5:
                self._emit("checkout_start", at, checkout)
                at += _SECONDS[rng.between(30, 300)]
            if kind == "order":
                order: dict[str, Any] = {
                    **checkout,
                    "category": product.category,
                    "brand": product.brand,
                }
                if rng.random() < persona.coupon_rate:
                    in_season = at.month in (11, 12)
                    order["coupon"] = rng.one_of(SEASON_COUPONS if in_season else COUPONS)
                order["device"] = device
                order["channel"] = (
                    source if source in ("email", "push") else "in_app" if in_app else "web"
                )
                self._emit("order", at, order)
                placed = (value, items)
        self._keep_before_now(first_event)
        return placed

    def _product(self) -> Product:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.one_of(self.favourites)
        return rng.one_of(PRODUCTS[rng.one_of(self.categories)])

    def _product_view(self, at: datetime, product: Product) -> datetime:
        duration = self.rng.between(*self.persona.dwell)
        view = {
            "product": product.sku,
            "category": product.category,
            "brand": product.brand,
            "duration_s": duration,
        }
        self.events.append(("product_view", at, view))
        return at + _SECONDS[duration + self.rng.between(2, 15)]

    def _order_value(self) -> float:
        low, high = self.persona.order_value
        # Baskets vary a lot around a customer's typical spend (coefficient of variation
        # about 0.5, mean kept at the typical value); the CLV spend model needs that
        # spread to tell a customer's own variation from differences between customers.
        value = self.typical_value * self.rng.lognormvariate(-0.125, 0.5)
        return round(min(max(value, low), high), 2)

    def _emit(self, kind: str, at: datetime, properties: dict[str, Any]) -> None:
        self.events.append((kind, at, properties))

    def _keep_before_now(self, first_event: int) -> None:
        """Shift a visit that started late yesterday and ran past ``now`` back a little."""
        latest = self.now - _LAST_MINUTE
        overshoot = self.events[-1][1] - latest
        if overshoot > timedelta(0):
            self.events[first_event:] = [
                (kind, at - overshoot, properties)
                for kind, at, properties in self.events[first_event:]
            ]

    # --- who ------------------------------------------------------------------

    def _customer(self) -> DemoCustomer:
        rng, persona, address = self.rng, self.persona, self.address
        person = draw_person(rng, address, self.number, persona.ages, self.today)
        times = [at for _, at, _ in self.events]
        created = min(times) - timedelta(seconds=rng.between(0, 600))
        updated = max(times)
        attributes: dict[str, Any] = {
            "persona": persona.name,
            "lifestyle": self.lifestyle,
            "acquisition_source": self.first_source,
            "has_app": self.app_os is not None,
            "household_size": rng.between(1, 5),
            "income_band": persona.income.pick(rng),
        }
        email = person.email
        if self.customer_type != "individual":
            organisation = draw_organisation(rng, address, self.customer_type)
            email = work_email(person, organisation)
            attributes.update(
                company=organisation.name,
                industry=organisation.industry,
                company_size=organisation.size,
            )
        cid = customer_id(self.number)
        row = {
            "id": cid,
            "email": email,
            "phone": person.phone,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "birth_date": person.birth_date,
            "gender": person.gender,
            "country": address.country,
            "region": address.region,
            "city": address.city,
            "neighborhood": address.neighborhood,
            "timezone": address.timezone,
            "locale": address.locale,
            "customer_type": self.customer_type,
            "created_at": created,
            "updated_at": updated,
            "attributes": attributes,
        }
        consents = [_consent(cid, "email", rng.random() < persona.email_consent, created)]
        token = None
        if self.app_os is not None:
            first_seen = min(self.app_visits, default=created)
            consents.append(_consent(cid, "push", rng.random() < persona.push_consent, first_seen))
            token = self._token(cid, first_seen, max(self.app_visits, default=created))
        return DemoCustomer(self.number, persona, row, self.events, consents, token)

    def _token(self, customer: str, created: datetime, last_seen: datetime) -> dict[str, Any]:
        rng = self.rng
        if self.app_os == "ios":
            token = f"{rng.getrandbits(256):064x}"
        else:
            token = f"{rng.getrandbits(64):016x}:APA91b{rng.getrandbits(512):0128x}"
        invalidated = None
        dead_share = 0.35 if self.persona.window[0] > 180 else 0.06
        if rng.random() < dead_share:
            when = last_seen + timedelta(days=rng.between(20, 120))
            invalidated = when if when < self.now else None
        return {
            "customer_id": customer,
            "platform": self.app_os,
            "token": token,
            "created_at": created,
            "last_seen_at": last_seen,
            "invalidated_at": invalidated,
        }


def _describe(product: Product) -> dict[str, Any]:
    return {
        "product": product.sku,
        "name": product.name,
        "category": product.category,
        "brand": product.brand,
    }


def _consent(customer: str, channel: str, granted: bool, at: datetime) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "channel": channel,
        "purpose": "marketing",
        "granted": granted,
        "source": "demo",
        "updated_at": at,
    }
