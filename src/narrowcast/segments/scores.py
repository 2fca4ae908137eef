"""Scores: lead score, NPS, purchase intent, RFM quintiles and CLV, usable in rules.

Each score is a name a rule can use like an attribute (``lead_score >= 50``,
``nps_class == 'promoter'``, ``rfm_r >= 4``) and is computed by the database
at the evaluation instant, except ``clv``, which needs a fitted model and is
read from the ``customer_scores`` table that ``narrowcast segments score``
fills. The formulas, with the defaults of ``ScoreSettings``:

``lead_score``
    Σ over the customer's events up to now of the points of every rule the
    event matches (pricing page +10, demo page +20, careers page −5, a session
    from search +5, from social +1), each multiplied by
    ``0.5 ** (age_in_days / half_life_days)`` when ``half_life`` is set; 0
    for a customer with no such events.
``nps`` / ``nps_class``
    The score of the latest ``nps_response``; promoter 9–10, passive 7–8,
    detractor 0–6; missing when the customer never answered.
``intent``
    From the latest product interest (``product_view``, ``cart_add``,
    ``checkout_start``): ``'hot'`` within 7 days, ``'warm'`` within 30 days,
    ``'cold'`` otherwise — including customers who never showed any.
``rfm_r`` / ``rfm_f`` / ``rfm_m``
    Quintile scores 1–5 among the customers with orders (5 = most recent,
    most orders, most spent): ``ceil(5 · k / n)`` where ``k`` is how many of
    the ``n`` ordering customers have a value no better than this customer's.
    Ties share a score. Missing for customers without orders.
``clv``
    BG/NBD expected number of orders over ``horizon`` × the expected value of
    an order (Gamma-Gamma, or the customer's average order when ``spend`` says
    so or the Gamma-Gamma fit fails), as of the last ``segments score`` run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, FromClause, and_, case, func, literal, select

from narrowcast.segments.grouped import PerCustomer, grouped, latest, mapped
from narrowcast.segments.language import ValueType, parse_duration
from narrowcast.segments.shared_scan import Conditional
from narrowcast.segments.sql import DaysBetween, json_property
from narrowcast.store.schema import Instant, customer_scores, customers, events

SCORE_TYPES: dict[str, ValueType] = {
    "lead_score": "number",
    "nps": "number",
    "nps_class": "text",
    "intent": "text",
    "rfm_r": "number",
    "rfm_f": "number",
    "rfm_m": "number",
    "clv": "number",
}


def _duration(text: str) -> str:
    parse_duration(text)  # raises ValueError with the expected form
    return text


Duration = Annotated[str, AfterValidator(_duration)]
PropertyValue = str | bool | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeadRule(_Model):
    """Points for each event of ``event`` whose properties equal ``match``."""

    event: str
    points: float
    match: dict[str, PropertyValue] = Field(default_factory=dict)
    within: Duration | None = None


class LeadScore(_Model):
    rules: tuple[LeadRule, ...] = (
        LeadRule(event="page_view", match={"page": "pricing"}, points=10),
        LeadRule(event="page_view", match={"page": "demo"}, points=20),
        LeadRule(event="page_view", match={"page": "careers"}, points=-5),
        LeadRule(event="session_start", match={"source": "search"}, points=5),
        LeadRule(event="session_start", match={"source": "social"}, points=1),
    )
    half_life: Duration | None = None
    """Time decay: an event's points halve every ``half_life``; none by default."""


class Nps(_Model):
    event: str = "nps_response"
    property: str = "score"
    promoter: float = 9
    passive: float = 7

    @model_validator(mode="after")
    def _ordered(self) -> Nps:
        if not self.passive < self.promoter:
            raise ValueError("passive must be below promoter")
        return self


class Intent(_Model):
    events: tuple[str, ...] = ("product_view", "cart_add", "checkout_start")
    hot: Duration = "7d"
    warm: Duration = "30d"

    @model_validator(mode="after")
    def _ordered(self) -> Intent:
        if not parse_duration(self.hot) < parse_duration(self.warm):
            raise ValueError("hot must be shorter than warm")
        if not self.events:
            raise ValueError("events must name at least one event type")
        return self


class Rfm(_Model):
    event: str = "order"
    within: Duration | None = None
    """Only orders in this window count; all orders by default."""


class Clv(_Model):
    event: str = "order"
    horizon: Duration = "52w"
    discount_rate: float = 0.0
    """Per week; 0 means undiscounted."""
    spend: Literal["auto", "gamma-gamma", "average"] = "auto"
    """How a future order is valued: the Gamma-Gamma model; each customer's average
    order (the shop's for one-time buyers); or ``auto``, Gamma-Gamma unless the data
    cannot support it, then the average — the report says which was used."""


class ScoreSettings(_Model):
    """``[scores]`` in segments.toml."""

    lead_score: LeadScore = LeadScore()
    nps: Nps = Nps()
    intent: Intent = Intent()
    rfm: Rfm = Rfm()
    clv: Clv = Clv()

    def event_types(self) -> dict[str, set[str]]:
        """Every event type (and its properties) a score reads, for checking the catalog."""
        wanted: dict[str, set[str]] = {}
        for rule in self.lead_score.rules:
            wanted.setdefault(rule.event, set()).update(rule.match)
        wanted.setdefault(self.nps.event, set()).add(self.nps.property)
        for kind in self.intent.events:
            wanted.setdefault(kind, set())
        wanted.setdefault(self.rfm.event, set())
        wanted.setdefault(self.clv.event, set())
        return wanted


class ScoreSql:
    """Each score as a ``PerCustomer`` value at the instant ``now`` (aware, UTC)."""

    def __init__(self, settings: ScoreSettings, now: datetime) -> None:
        self.settings = settings
        self.now = now
        self._now = literal(now, Instant)

    def build(self, name: str) -> PerCustomer:
        if name in ("rfm_r", "rfm_f", "rfm_m"):
            return self._rfm(name[-1])
        builders = {
            "lead_score": self._lead_score,
            "nps": self._nps,
            "nps_class": self._nps_class,
            "intent": self._intent,
            "clv": self._clv,
        }
        return builders[name]()

    def _since(self, column: Any, within: str | None) -> list[ColumnElement[bool]]:
        where = [column <= self._now]
        if within is not None:
            where.append(column > literal(self.now - parse_duration(within), Instant))
        return where

    def conditional(self, name: str) -> Conditional | None:
        """The score as a conditional aggregate over a shared events scan, if it is one."""
        if name == "lead_score":
            kinds = frozenset(rule.event for rule in self.settings.lead_score.rules)
            if not kinds:
                return None

            def points(e: FromClause, _only: ColumnElement[bool] | None) -> ColumnElement[Any]:
                return self._lead_total(e)  # an event no rule matches is worth 0 anyway

            return Conditional(("score", name), kinds, None, _of_types(kinds), points, 0.0)
        if name == "intent":
            kinds = frozenset(self.settings.intent.events)

            def newest(e: FromClause, only: ColumnElement[bool] | None) -> ColumnElement[Any]:
                latest = func.max(e.c.ts if only is None else case((only, e.c.ts)))
                return self._intent_class(latest)

            return Conditional(("score", name), kinds, None, _of_types(kinds), newest, "cold")
        return None

    def _lead_points(self, e: FromClause) -> ColumnElement[Any]:
        """The points one event of ``e`` is worth (0 when no rule matches it)."""
        settings = self.settings.lead_score
        points: ColumnElement[Any] = literal(0.0)
        for rule in settings.rules:
            matches = [e.c.type == rule.event]
            matches += [_property(e, key, value) == value for key, value in rule.match.items()]
            if rule.within is not None:
                matches += self._since(e.c.ts, rule.within)[1:]
            points = points + case((and_(*matches), literal(rule.points)), else_=literal(0.0))
        if settings.half_life is not None:
            days = parse_duration(settings.half_life) / timedelta(days=1)
            age = DaysBetween(self._now, e.c.ts)
            points = points * func.exp(literal(-math.log(2) / days) * age)
        return points

    def _lead_total(self, e: FromClause) -> ColumnElement[Any]:
        return func.coalesce(func.sum(self._lead_points(e)), literal(0.0))

    def _lead_score(self) -> PerCustomer:
        settings = self.settings.lead_score
        e = events.alias("lead_e")
        kinds = sorted({rule.event for rule in settings.rules})
        if not kinds:
            zero = literal(0.0)
            return PerCustomer(select(customers.c.id, zero).where(literal(False)), 0.0, zero)
        where = [e.c.type.in_(kinds), *self._since(e.c.ts, None)]
        total = self._lead_total(e)
        mine = select(total).where(e.c.customer_id == customers.c.id, *where).scalar_subquery()
        return PerCustomer(grouped(e.c.customer_id, total, where), 0.0, mine)

    def _nps(self) -> PerCustomer:
        settings = self.settings.nps
        e = events.alias("nps_e")
        where = [e.c.type == settings.event, *self._since(e.c.ts, None)]
        score = json_property(e, settings.property, "number")
        order = (e.c.ts, e.c.id)
        mine = (
            select(score)
            .where(e.c.customer_id == customers.c.id, *where)
            .order_by(*(o.desc() for o in order))
            .limit(1)
            .scalar_subquery()
        )
        return PerCustomer(latest(e.c.customer_id, score, order, where), None, mine)

    def _nps_class(self) -> PerCustomer:
        settings = self.settings.nps

        def classify(score: ColumnElement[Any]) -> ColumnElement[Any]:
            return case(
                (score >= settings.promoter, literal("promoter")),
                (score >= settings.passive, literal("passive")),
                (score.is_not(None), literal("detractor")),
                else_=None,
            )

        return mapped(self._nps(), classify, None)

    def _intent_class(self, latest_ts: ColumnElement[Any]) -> ColumnElement[Any]:
        # A customer with no such event has no latest instant: 'cold' too.
        settings = self.settings.intent
        hot = literal(self.now - parse_duration(settings.hot), Instant)
        warm = literal(self.now - parse_duration(settings.warm), Instant)
        return case(
            (latest_ts > hot, literal("hot")),
            (latest_ts > warm, literal("warm")),
            else_=literal("cold"),
        )

    def _intent(self) -> PerCustomer:
        settings = self.settings.intent
        e = events.alias("intent_e")
        where = [e.c.type.in_(settings.events), *self._since(e.c.ts, None)]
        newest = func.max(e.c.ts)
        mine = select(newest).where(e.c.customer_id == customers.c.id, *where).scalar_subquery()
        rows = grouped(e.c.customer_id, newest, where)
        return mapped(PerCustomer(rows, None, mine), self._intent_class, "cold")

    def _rfm(self, which: str) -> PerCustomer:
        settings = self.settings.rfm
        e = events.alias("rfm_e")
        where = [e.c.type == settings.event, *self._since(e.c.ts, settings.within)]
        metrics = (
            select(
                e.c.customer_id.label("customer_id"),
                func.max(e.c.ts).label("r"),
                func.count().label("f"),
                func.coalesce(func.sum(e.c.value), literal(0.0)).label("m"),
            )
            .where(*where)
            .group_by(e.c.customer_id)
            .subquery()
        )
        # ceil(5k/n) in integers: (5k + n - 1) / n, k counting ties (RANGE frame).
        k = func.count().over(order_by=metrics.c[which])
        n = func.count().over()
        quintile = (k * 5 + n - 1) // n
        rows = select(metrics.c.customer_id, quintile.label("value"))
        ranked = rows.subquery()
        mine = (
            select(ranked.c.value).where(ranked.c.customer_id == customers.c.id).scalar_subquery()
        )
        return PerCustomer(rows, None, mine)

    def _clv(self) -> PerCustomer:
        s = customer_scores
        rows = select(s.c.customer_id, s.c.value).where(s.c.name == "clv")
        mine = (
            select(s.c.value)
            .where(s.c.customer_id == customers.c.id, s.c.name == "clv")
            .scalar_subquery()
        )
        return PerCustomer(rows, None, mine)


def _of_types(kinds: frozenset[str]) -> Callable[[FromClause], ColumnElement[bool]]:
    return lambda e: e.c.type.in_(sorted(kinds))


def _property(e: Any, key: str, value: PropertyValue) -> ColumnElement[Any]:
    if isinstance(value, bool):
        return json_property(e, key, "bool")  # type: ignore[no-any-return]
    if isinstance(value, int | float):
        return e.c.value if key == "value" else json_property(e, key, "number")  # type: ignore[no-any-return]
    return json_property(e, key, "text")  # type: ignore[no-any-return]


__all__ = ["SCORE_TYPES", "ScoreSettings", "ScoreSql"]
