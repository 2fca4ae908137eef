"""A plain-Python evaluator of checked segment rules: slow, and obviously right.

The SQL compiler is tested against this module: both read the tree that
``parse_rule`` builds, this one walks it over an in-memory ``World`` customer
by customer, the compiler turns it into one query, and the two must name the
same customers. It is written from the rule language's documentation, never
from the compiler's SQL:

* a missing value is Python ``None``; any comparison with a missing value is
  false, and ``not X`` is exactly the complement of ``X`` (two-valued logic);
* an event counts when ``now − within < ts ≤ now``; events after ``now`` are
  ignored by every function;
* text compared with a date is read as an ISO date, and so is an imported
  attribute whose catalogued type is ``date``;
* ``age`` is the number of whole years since ``birth_date`` on the UTC date
  of ``now``; someone born on 29 February is a year older on 1 March in a
  year without one;
* ``days_since`` and ``days_since_first`` are whole days (floor) of absolute
  24-hour days between the event and ``now``;
* ``last`` is the property of the latest event, ties broken by the later
  event id, and missing when that event lacks the property;
* scores follow the formulas in ``narrowcast.segments.scores``'s docstring:
  lead score points per matching event (halved every ``half_life``), the
  latest NPS answer and its class, intent from the latest product interest,
  RFM quintiles ``ceil(5k/n)`` with ties sharing a score, and ``clv`` as
  stored in ``World.scores``.

``World.write`` puts the same world into a real store, so a test can evaluate
a rule both ways.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert

from narrowcast.segments.language import (
    Aggregate,
    Attr,
    BoolOp,
    Compare,
    Const,
    Geo,
    In,
    LatestOf,
    Node,
    Not,
    Score,
    SegmentRef,
    StoreAvg,
    Truth,
    parse_duration,
)
from narrowcast.segments.scores import ScoreSettings
from narrowcast.store.schema import (
    attribute_keys,
    customer_scores,
    customers,
    event_properties,
    events,
)

# Customer columns a rule can name directly; everything else is in ``attributes``.
COLUMNS = frozenset(customers.c.keys()) - {"attributes", "created_at", "updated_at"}
GEO_LEVELS = ("country", "region", "city", "neighborhood")
SEEDED_AT = datetime(2020, 1, 1, tzinfo=UTC)

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass
class World:
    """Customers and events as plain dicts, plus the catalogue they imply.

    A customer is ``{"id": …, <column>: …, "attributes": {…}}``; an event is
    ``{"id": n, "customer_id": …, "type": …, "ts": aware datetime,
    "properties": {…}}`` — ``value`` is always ``properties["value"]``.
    ``attribute_types`` and ``property_types`` become the ``attribute_keys``
    and ``event_properties`` rows that the rule checker reads.
    """

    customers: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    attribute_types: dict[str, str] = field(default_factory=dict)
    property_types: dict[str, dict[str, str]] = field(default_factory=dict)
    scores: dict[tuple[str, str], float | None] = field(default_factory=dict)
    """Fitted scores by (customer id, score name), as ``customer_scores`` holds them."""
    _by_customer: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def events_of(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's events (an index, so big worlds stay tractable)."""
        if not self._by_customer and self.events:
            for event in self.events:
                self._by_customer.setdefault(event["customer_id"], []).append(event)
        return self._by_customer.get(customer_id, [])

    def cached(self, key: Any, compute: Any) -> Any:
        """A store-wide value (an average, the RFM table) computed once per key."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def customer(self, id: str, **columns: Any) -> dict[str, Any]:
        attributes = columns.pop("attributes", {})
        row = {"id": id, **columns, "attributes": dict(attributes)}
        self.customers.append(row)
        return row

    def event(self, customer_id: str, type: str, ts: datetime, **properties: Any) -> dict[str, Any]:
        assert ts.tzinfo is not None, "event instants are aware"
        self._by_customer.clear()
        self._cache.clear()
        row = {
            "id": len(self.events) + 1,
            "customer_id": customer_id,
            "type": type,
            "ts": ts.astimezone(UTC),
            "properties": properties,
        }
        self.events.append(row)
        return row

    def ids(self) -> set[str]:
        return {c["id"] for c in self.customers}

    def write(self, conn: Connection) -> None:
        """Replace everything the rule language reads with this world."""
        for table in (customer_scores, events, event_properties, attribute_keys, customers):
            conn.execute(delete(table))
        if self.customers:
            conn.execute(
                insert(customers),
                [
                    {
                        **{column: c.get(column) for column in COLUMNS},
                        "customer_type": c.get("customer_type") or "individual",
                        "created_at": SEEDED_AT,
                        "updated_at": SEEDED_AT,
                        "attributes": c["attributes"],
                    }
                    for c in self.customers
                ],
            )
        if self.attribute_types:
            conn.execute(
                insert(attribute_keys),
                [
                    {"key": key, "value_type": kind, "first_seen_at": SEEDED_AT}
                    for key, kind in self.attribute_types.items()
                ],
            )
        catalogued = [
            {"type": kind, "property": name, "value_type": value_type, "first_seen_at": SEEDED_AT}
            for kind, properties in self.property_types.items()
            for name, value_type in properties.items()
        ]
        if catalogued:
            conn.execute(insert(event_properties), catalogued)
        if self.scores:
            conn.execute(
                insert(customer_scores),
                [
                    {"customer_id": c, "name": name, "value": value, "computed_at": SEEDED_AT}
                    for (c, name), value in self.scores.items()
                ],
            )
        if self.events:
            conn.execute(
                insert(events),
                [
                    {
                        "id": e["id"],
                        "event_id": f"ev-{e['id']}",
                        "customer_id": e["customer_id"],
                        "type": e["type"],
                        "ts": e["ts"],
                        "value": _number(e["properties"].get("value")),
                        "properties": e["properties"],
                    }
                    for e in self.events
                ],
            )


def evaluate(
    rule: Node, world: World, now: datetime, scores: ScoreSettings | None = None
) -> set[str]:
    """The ids of the customers of ``world`` that ``rule`` matches at ``now``."""
    settings = scores or ScoreSettings()
    return {c["id"] for c in world.customers if _Evaluation(world, now, c, settings).holds(rule)}


def value_of(
    node: Node,
    world: World,
    now: datetime,
    customer_id: str,
    scores: ScoreSettings | None = None,
) -> Any:
    """What ``node`` (an attribute, an aggregate, …) is for one customer; None if missing."""
    (customer,) = (c for c in world.customers if c["id"] == customer_id)
    return _Evaluation(world, now, customer, scores or ScoreSettings()).value(node)


def age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def whole_days(now: datetime, then: datetime) -> int:
    # Aware datetimes that share a tzinfo subtract as wall-clock times; in UTC
    # wall-clock time is absolute time.
    return (now.astimezone(UTC) - then.astimezone(UTC)) // timedelta(days=1)


class _Evaluation:
    def __init__(
        self, world: World, now: datetime, customer: dict[str, Any], scores: ScoreSettings
    ) -> None:
        self.world = world
        self.now = now.astimezone(UTC)
        self.customer = customer
        self.scores = scores

    def holds(self, node: Node) -> bool:
        if isinstance(node, BoolOp):
            results = [self.holds(item) for item in node.items]
            return all(results) if node.op == "and" else any(results)
        if isinstance(node, Not):
            return not self.holds(node.item)
        if isinstance(node, SegmentRef):
            return self.holds(node.rule)
        if isinstance(node, Compare):
            left, right = self.value(node.left), self.value(node.right)
            left, right = _dated(left, right), _dated(right, left)
            if left is None or right is None:
                return False
            return _OPERATORS[node.op](left, right)
        if isinstance(node, In):
            item = self.value(node.item)
            if item is None:
                return False
            found = any(_same(item, _dated(value, item)) for value in node.values)
            return found != node.negated
        if isinstance(node, Geo):
            return all(
                self.customer.get(level) == part
                for level, part in zip(GEO_LEVELS, node.parts, strict=False)
            )
        if isinstance(node, Truth | Const):
            return self.value(node) is True
        raise TypeError(f"not a condition: {node!r}")

    def value(self, node: Node) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Attr):
            return self.attribute(node)
        if isinstance(node, Score):
            return self.score(node.name)
        if isinstance(node, LatestOf):
            chosen = [
                e
                for e in self.world.events_of(self.customer["id"])
                if e["type"] in node.event_types and self.in_window(e, node.within)
            ]
            return max(chosen, key=lambda e: (e["ts"], e["id"]))["type"] if chosen else None
        if isinstance(node, Truth):
            return self.value(node.item)
        if isinstance(node, Aggregate):
            return self.aggregate(node)
        if isinstance(node, StoreAvg):

            def average() -> float | None:
                chosen = [
                    e
                    for e in self.world.events
                    if e["type"] == node.event_type and self.in_window(e, node.within)
                ]
                return _mean(_present(e["properties"].get(node.property) for e in chosen))

            return self.world.cached(("store_avg", node, self.now), average)
        return self.holds(node)

    def attribute(self, node: Attr) -> Any:
        if node.name == "age":
            return age(self.customer.get("birth_date"), self.now.date())
        if node.name in COLUMNS:
            return self.customer.get(node.name)
        value = self.customer["attributes"].get(node.name)
        return _dated(value, date.min) if node.type == "date" else value

    def in_window(self, event: dict[str, Any], within: timedelta | None) -> bool:
        ts: datetime = event["ts"]
        if ts > self.now:
            return False
        return within is None or ts > self.now - within

    def aggregate(self, node: Aggregate) -> Any:
        chosen = [
            e
            for e in self.world.events_of(self.customer["id"])
            if e["type"] == node.event_type
            and self.in_window(e, node.within)
            and all(_same(e["properties"].get(key), wanted) for key, wanted in node.filters)
            and all(e["properties"].get(key) is not None for key in node.present)
            and all(e["properties"].get(key) is None for key in node.absent)
        ]
        function = node.function
        if function == "count":
            return len(chosen)
        if function == "ever":
            return bool(chosen)
        if function == "days_since":
            return whole_days(self.now, max(e["ts"] for e in chosen)) if chosen else None
        if function == "days_since_first":
            return whole_days(self.now, min(e["ts"] for e in chosen)) if chosen else None
        assert node.property is not None
        if function == "last":
            if not chosen:
                return None
            latest = max(chosen, key=lambda e: (e["ts"], e["id"]))
            return latest["properties"].get(node.property)
        values = _present(e["properties"].get(node.property) for e in chosen)
        if function == "sum":
            return math.fsum(values)
        if function == "avg":
            return _mean(values)
        if function == "min":
            return min(values, default=None)
        if function == "max":
            return max(values, default=None)
        if function == "distinct":
            return len(set(values))
        raise AssertionError(f"unknown function {function}")

    # --- scores -------------------------------------------------------------------

    def mine(self, kinds: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(kinds)
        return [
            e
            for e in self.world.events_of(self.customer["id"])
            if e["type"] in wanted and self.in_window(e, None)
        ]

    def score(self, name: str) -> Any:
        if name.startswith("rfm_"):
            return self.rfm(name[-1])
        if name == "clv":
            return self.world.scores.get((self.customer["id"], "clv"))
        return getattr(self, name)()

    def lead_score(self) -> float:
        settings = self.scores.lead_score
        total = 0.0
        for event in self.mine(rule.event for rule in settings.rules):
            points = 0.0
            for rule in settings.rules:
                if event["type"] != rule.event:
                    continue
                if not all(_same(event["properties"].get(k), v) for k, v in rule.match.items()):
                    continue
                if rule.within is not None and not self.in_window(
                    event, parse_duration(rule.within)
                ):
                    continue
                points += rule.points
            if settings.half_life is not None:
                age = (self.now - event["ts"]) / parse_duration(settings.half_life)
                points *= 0.5**age
            total += points
        return total

    def nps(self) -> Any:
        settings = self.scores.nps
        answers = self.mine([settings.event])
        if not answers:
            return None
        latest = max(answers, key=lambda e: (e["ts"], e["id"]))
        score = latest["properties"].get(settings.property)
        return score if _kind(score) == "number" else None

    def nps_class(self) -> str | None:
        score = self.nps()
        if score is None:
            return None
        if score >= self.scores.nps.promoter:
            return "promoter"
        return "passive" if score >= self.scores.nps.passive else "detractor"

    def intent(self) -> str:
        settings = self.scores.intent
        interest = self.mine(settings.events)
        if interest:
            age = self.now - max(e["ts"] for e in interest)
            if age < parse_duration(settings.hot):
                return "hot"
            if age < parse_duration(settings.warm):
                return "warm"
        return "cold"

    def rfm(self, which: str) -> int | None:
        settings = self.scores.rfm
        within = parse_duration(settings.within) if settings.within else None

        def table() -> dict[str, Any]:
            metrics: dict[str, Any] = {}
            for customer_id in {e["customer_id"] for e in self.world.events}:
                orders = [
                    e
                    for e in self.world.events_of(customer_id)
                    if e["type"] == settings.event and self.in_window(e, within)
                ]
                if orders:
                    values = _present(_number(e["properties"].get("value")) for e in orders)
                    metrics[customer_id] = {
                        "r": max(e["ts"] for e in orders),
                        "f": len(orders),
                        "m": math.fsum(values),
                    }[which]
            return metrics

        metrics = self.world.cached(("rfm", which, settings, self.now), table)
        mine = metrics.get(self.customer["id"])
        if mine is None:
            return None
        n = len(metrics)
        k = sum(1 for value in metrics.values() if value <= mine)
        return (5 * k + n - 1) // n


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _same(value: Any, wanted: Any) -> bool:
    """Equality that never mixes kinds: ``True`` is not ``1``, ``'2'`` is not ``2``."""
    return value is not None and _kind(value) == _kind(wanted) and value == wanted


def _dated(value: Any, other: Any) -> Any:
    """ISO text compared with a date is that date (``birth_date < '1990-01-31'``)."""
    if isinstance(value, str) and isinstance(other, date):
        return date.fromisoformat(value)
    return value


def _present(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if v is not None]


def _mean(values: list[Any]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _number(value: Any) -> float | None:
    return float(value) if _kind(value) == "number" else None
