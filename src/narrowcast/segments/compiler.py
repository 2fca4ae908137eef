"""Turning a checked rule into one SQL query (SQLAlchemy Core) for both databases.

Every rule becomes ``SELECT customers.id FROM customers WHERE <predicate>``.

A condition on a per-customer value (an event aggregate or a score) compared
with something that is the same for every customer (a constant, or a
store-wide ``store_avg``) is asked as a set, the way one would write it by
hand: ``customers.id IN (SELECT customer_id FROM events WHERE … GROUP BY
customer_id HAVING …)`` — or, when the condition also holds for customers
with no events at all (``count('order') < 2``), as ``NOT EXISTS`` a group
where it fails (see ``grouped.py``). The database then answers each
condition with one pass over the events index instead of one probe per
customer. Conditions that compare two per-customer values fall back to
correlated subqueries, which the index ``ix_events_customer_type_ts``
answers.

Indexes the compiled queries rely on: ``ix_events_customer_type_ts``
(customer_id, type, ts) for the grouped scans and the correlated probes,
``ix_events_type_ts`` (type, ts) for store-wide aggregates and ``ever``, the
primary keys of ``customers`` and ``customer_scores``.

Two-valued logic: SQL comparisons with NULL are "unknown", and ``NOT unknown``
is still unknown, so ``not X`` would lose the customers for whom X is missing.
Every atomic condition is therefore ``coalesce(condition, false)`` and every
set form is never NULL: a comparison with a missing value is false, and
``not X`` is exactly the complement of ``X``.

Names never reach SQL as text: attributes map to columns or to a JSON path
bound as a parameter, and every value is a bound parameter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from narrowcast.segments.grouped import PerCustomer, count_distinct, grouped, known, latest
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
)
from narrowcast.segments.scores import ScoreSettings, ScoreSql
from narrowcast.segments.shared_scan import (
    Combination,
    Conditional,
    Leaf,
    Shape,
    holds_without_events,
    matching,
    shared_scan,
)
from narrowcast.segments.sql import AgeInYears, IsoDate, WholeDaysSince, json_property
from narrowcast.store.schema import Instant, customers, events

COLUMN_ATTRIBUTES = {
    "id": "text",
    "email": "text",
    "phone": "text",
    "first_name": "text",
    "last_name": "text",
    "gender": "text",
    "country": "text",
    "region": "text",
    "city": "text",
    "neighborhood": "text",
    "timezone": "text",
    "locale": "text",
    "customer_type": "text",
    "birth_date": "date",
}
DERIVED_ATTRIBUTES = {"age": "number"}
_GEO_COLUMNS = ("country", "region", "city", "neighborhood")
# Python's operators on SQLAlchemy columns render each dialect's own SQL ("=" for ==).
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class Compiler:
    """Compiles checked rules for one evaluation instant ``now`` (aware, any zone).

    ``per_row=True`` asks every condition with correlated subqueries, customer
    by customer: slower over a whole store, but the fastest way to evaluate a
    rule for one customer (``segments explain --customer``), and an
    independent second spelling that the tests hold against the set forms.
    """

    def __init__(
        self, now: datetime, scores: ScoreSettings | None = None, *, per_row: bool = False
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("the evaluation instant must be aware")
        # In UTC: windows are exact durations (no wall-clock DST shifts) and age
        # is counted on the UTC date, whatever zone the caller's instant was in.
        self.now = now.astimezone(UTC)
        self._now = literal(self.now, Instant)
        self._scores = ScoreSql(scores or ScoreSettings(), self.now)
        self.per_row = per_row

    def query(self, rule: Node) -> Select[tuple[str]]:
        """``SELECT customers.id`` of every customer the rule matches."""
        shape = None if self.per_row else self._shape(rule)
        if shape is not None and not holds_without_events(shape):
            # Only customers with events can match, and events only name existing
            # customers (a foreign key): the grouped scan is the whole answer.
            scan = matching(shape, self.now).subquery("members")
            return select(scan.c.customer_id.label("id"))
        return select(customers.c.id).where(self.predicate(rule))

    def predicate(self, node: Node) -> ColumnElement[bool]:
        """A condition on the current ``customers`` row that is never NULL."""
        if not self.per_row:
            shape = self._shape(node)
            if shape is not None:
                return shared_scan(shape, self.now)
        if isinstance(node, BoolOp):
            shapes = [] if self.per_row else [self._shape(item) for item in node.items]
            scannable = tuple(shape for shape in shapes if shape is not None)
            if len(scannable) >= 2:
                # The event conditions share one scan; the others stay as they are.
                parts = [shared_scan(Combination(node.op, scannable), self.now)]
                parts += [
                    self.predicate(item)
                    for item, shape in zip(node.items, shapes, strict=True)
                    if shape is None
                ]
            else:
                parts = [self.predicate(item) for item in node.items]
            return and_(*parts) if node.op == "and" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.predicate(node.item))
        if isinstance(node, SegmentRef):
            return self.predicate(node.rule)
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, In):
            return self._in(node)
        if isinstance(node, Geo):
            return and_(
                *(
                    known(customers.c[column] == part)
                    for column, part in zip(_GEO_COLUMNS, node.parts, strict=False)
                )
            )
        if isinstance(node, Const) and node.type == "bool":
            return true() if node.value else false()
        if isinstance(node, Truth):
            return self._truth(node.item)
        raise TypeError(f"not a condition: {node!r}")

    def value(self, node: Node) -> ColumnElement[Any]:
        """The value for the current ``customers`` row; NULL when missing."""
        if isinstance(node, Const):
            return literal(node.value, Float) if node.type == "number" else literal(node.value)
        if isinstance(node, Attr):
            return self._attribute(node)
        if isinstance(node, Aggregate | Score | LatestOf):
            source = self.per_customer(node)
            assert source is not None
            return source.correlated
        if isinstance(node, StoreAvg):
            e = events.alias("se")
            where = [e.c.type == node.event_type, *self._window(e, node.within)]
            column = _property(e, node.property, "number")
            return select(func.avg(column)).where(*where).scalar_subquery()
        return case((self.predicate(node), True), else_=False)

    def per_customer(self, node: Node) -> PerCustomer | None:
        """The value as a ``PerCustomer`` when it comes from events or scores, else None."""
        if isinstance(node, Score):
            return self._scores.build(node.name)
        if isinstance(node, Aggregate):
            return self._aggregate(node)
        if isinstance(node, LatestOf):
            return self._latest_of(node)
        return None

    # --- conditions ------------------------------------------------------------------

    def _shape(self, node: Node) -> Shape | None:
        """``node`` as conditions on event aggregates only (see shared_scan.py), or None."""
        if isinstance(node, SegmentRef):
            return self._shape(node.rule)
        if isinstance(node, BoolOp | Not):
            items = node.items if isinstance(node, BoolOp) else (node.item,)
            shapes = [self._shape(item) for item in items]
            if any(shape is None for shape in shapes):
                return None
            op = node.op if isinstance(node, BoolOp) else "not"
            return Combination(op, tuple(s for s in shapes if s is not None))
        if isinstance(node, Truth):
            source = self._conditional(node.item)
            if source is None or node.item.type != "bool":
                return None
            presence = isinstance(node.item, Aggregate) and node.item.function == "ever"
            return Leaf(source, lambda value: value, bool(source.empty), presence)
        if isinstance(node, In):
            source = self._conditional(node.item)
            if source is None:
                return None
            values = list(node.values)
            negated = node.negated

            def within(value: ColumnElement[Any]) -> ColumnElement[bool]:
                return value.not_in(values) if negated else value.in_(values)

            empty = source.empty
            empty_holds = empty is not None and any(_same(empty, v) for v in values) != negated
            return Leaf(source, within, empty_holds)
        if isinstance(node, Compare):
            for mine, other, symbol in (
                (node.left, node.right, node.op),
                (node.right, node.left, _MIRRORED[node.op]),
            ):
                source = self._conditional(mine)
                if source is None or not _same_for_everyone(other):
                    continue
                if source.empty is None:
                    empty_holds = False
                elif isinstance(other, Const):
                    empty_holds = _same_kind(source.empty, other.value) and bool(
                        _OPERATORS[symbol](source.empty, other.value)
                    )
                else:
                    return None  # only the database knows store_avg: see _among
                holds = _comparison(_OPERATORS[symbol], self.value(other))
                return Leaf(source, holds, empty_holds)
        return None

    def _conditional(self, node: Node) -> Conditional | None:
        """An aggregate as a conditional aggregate over a shared scan, when it can be one."""
        if isinstance(node, Score):
            return self._scores.conditional(node.name)
        if not isinstance(node, Aggregate) or node.function == "last":
            return None
        since = self.now - node.within if node.within is not None else None
        function = node.function

        def selects(e: FromClause) -> ColumnElement[bool]:
            selected = and_(e.c.type == node.event_type, *self._filters(e, node))
            if since is not None:
                selected = and_(selected, e.c.ts > literal(since, Instant))
            return selected

        def value(e: FromClause, only: ColumnElement[bool] | None) -> ColumnElement[Any]:
            def pick(column: ColumnElement[Any]) -> ColumnElement[Any]:
                return column if only is None else case((only, column))

            if function in ("count", "ever"):
                counted = func.count() if only is None else func.count(pick(literal(1)))
                return counted > 0 if function == "ever" else counted
            if function in ("days_since", "days_since_first"):
                when = pick(e.c.ts)
                edge = func.max(when) if function == "days_since" else func.min(when)
                return WholeDaysSince(self._now, edge)
            assert node.property is not None
            kind = "text" if function == "distinct" else "number"
            column = pick(_property(e, node.property, kind))
            if function == "distinct":
                return count_distinct(column)
            if function == "sum":
                return func.coalesce(func.sum(column), literal(0.0))
            if function == "avg":
                return func.avg(column)
            return func.min(column) if function == "min" else func.max(column)

        empty = {"count": 0, "ever": False, "sum": 0.0, "distinct": 0}.get(function)
        key = (node.event_type, node.within, node.filters, node.present, node.absent)
        filtered = bool(node.filters or node.present or node.absent)
        return Conditional(
            key, frozenset({node.event_type}), since, selects, value, empty, filtered
        )

    def _compare(self, node: Compare) -> ColumnElement[bool]:
        op = _OPERATORS[node.op]
        left, right = node.left, node.right
        if "date" in (left.type, right.type):
            return known(op(self._iso(left), self._iso(right)))
        for mine, other, symbol in ((left, right, node.op), (right, left, _MIRRORED[node.op])):
            source = None if self.per_row else self.per_customer(mine)
            if source is not None and _same_for_everyone(other):
                holds = _comparison(_OPERATORS[symbol], self.value(other))
                return self._among(source, holds, other, symbol)
        return known(op(self.value(left), self.value(right)))

    def _in(self, node: In) -> ColumnElement[bool]:
        values = list(node.values)
        if node.item.type == "date":
            values = [_iso_text(v) for v in values]
            item = self._iso(node.item)
            return known(item.not_in(values) if node.negated else item.in_(values))

        def holds(v: ColumnElement[Any]) -> ColumnElement[bool]:
            return v.not_in(values) if node.negated else v.in_(values)

        source = None if self.per_row else self.per_customer(node.item)
        if source is not None:
            empty = source.empty
            empty_holds = empty is not None and (
                any(_same(empty, v) for v in values) != node.negated
            )
            return source.where(holds, empty_holds)
        return known(holds(self.value(node.item)))

    def _truth(self, item: Node) -> ColumnElement[bool]:
        if self.per_row:
            return known(self.value(item) == literal(True, Boolean))
        if isinstance(item, Aggregate) and item.function == "ever":
            e, where = self._events(item)
            return customers.c.id.in_(select(e.c.customer_id).where(*where))
        source = self.per_customer(item)
        if source is not None:
            return source.where(lambda v: v == literal(True, Boolean), source.empty is True)
        return known(self.value(item) == literal(True, Boolean))

    def _among(
        self,
        source: PerCustomer,
        holds: Callable[[ColumnElement[Any]], ColumnElement[bool]],
        other: Node,
        symbol: str,
    ) -> ColumnElement[bool]:
        """Customers whose value satisfies ``holds``, asked as a set (see grouped.py)."""
        empty = source.empty
        if empty is None:
            return source.where(holds, False)
        if isinstance(other, Const):
            empty_holds = _same_kind(empty, other.value) and bool(
                _OPERATORS[symbol](empty, other.value)
            )
            return source.where(holds, empty_holds)
        # The other side is only known to the database (store_avg): let it decide.
        empty_holds_sql = known(holds(literal(empty)))
        return or_(
            and_(empty_holds_sql, source.where(holds, True)),
            and_(not_(empty_holds_sql), source.where(holds, False)),
        )

    # --- values ----------------------------------------------------------------------

    def _iso(self, node: Node) -> ColumnElement[Any]:
        """A date-typed value (or ISO text meant as one) as 'YYYY-MM-DD' text."""
        if isinstance(node, Const):
            return literal(_iso_text(node.value))
        if isinstance(node, Attr) and node.name in COLUMN_ATTRIBUTES:
            return IsoDate(customers.c[node.name])
        return self.value(node)

    def _attribute(self, node: Attr) -> ColumnElement[Any]:
        if node.name == "age":
            return AgeInYears(literal(self.now.date()), customers.c.birth_date)
        if node.name in COLUMN_ATTRIBUTES:
            return customers.c[node.name]
        kind = node.type if node.type in ("number", "bool") else "text"
        return json_property(customers, node.name, kind, column="attributes")  # type: ignore[no-any-return]

    def _events(self, node: Aggregate) -> tuple[FromClause, list[ColumnElement[bool]]]:
        """The events the aggregate reads, for every customer (no correlation)."""
        e = events.alias("e")
        where = [e.c.type == node.event_type, *self._window(e, node.within)]
        return e, where + self._filters(e, node)

    @staticmethod
    def _filters(e: FromClause, node: Aggregate) -> list[ColumnElement[bool]]:
        """Property equality and presence filters of an aggregate, on the events ``e``."""
        where = [_property(e, key, _kind(wanted)) == wanted for key, wanted in node.filters]
        where += [json_property(e, key, "text").is_not(None) for key in node.present]
        where += [json_property(e, key, "text").is_(None) for key in node.absent]
        return where

    def _window(self, e: FromClause, within: Any) -> list[ColumnElement[bool]]:
        where = [e.c.ts <= self._now]
        if within is not None:
            where.append(e.c.ts > literal(self.now - within, Instant))
        return where

    def _aggregate(self, node: Aggregate) -> PerCustomer:
        e, where = self._events(node)
        mine = [e.c.customer_id == customers.c.id, *where]
        function = node.function

        def one(value: ColumnElement[Any], empty: Any = None) -> PerCustomer:
            correlated: ColumnElement[Any] = select(value).where(*mine).scalar_subquery()
            if empty is not None:
                correlated = func.coalesce(correlated, literal(empty))
            return PerCustomer(grouped(e.c.customer_id, value, where), empty, correlated)

        if function == "count":
            return one(func.count(), 0)
        if function == "ever":
            return PerCustomer(
                grouped(e.c.customer_id, func.count() > 0, where), False, exists().where(*mine)
            )
        if function in ("days_since", "days_since_first"):
            edge = func.max(e.c.ts) if function == "days_since" else func.min(e.c.ts)
            return one(WholeDaysSince(self._now, edge))
        assert node.property is not None
        if function == "last":
            column = _property(e, node.property, node.type)
            order = (e.c.ts, e.c.id)
            correlated = (
                select(column)
                .where(*mine)
                .order_by(*(o.desc() for o in order))
                .limit(1)
                .scalar_subquery()
            )
            return PerCustomer(latest(e.c.customer_id, column, order, where), None, correlated)
        if function == "distinct":
            return one(count_distinct(_property(e, node.property, "text")), 0)
        column = _property(e, node.property, "number")
        if function == "sum":
            return one(func.coalesce(func.sum(column), literal(0.0)), 0.0)
        if function == "avg":
            return one(func.avg(column))
        return one(func.min(column) if function == "min" else func.max(column))

    def _latest_of(self, node: LatestOf) -> PerCustomer:
        e = events.alias("e")
        where = [e.c.type.in_(node.event_types), *self._window(e, node.within)]
        order = (e.c.ts, e.c.id)
        correlated = (
            select(e.c.type)
            .where(e.c.customer_id == customers.c.id, *where)
            .order_by(*(o.desc() for o in order))
            .limit(1)
            .scalar_subquery()
        )
        return PerCustomer(latest(e.c.customer_id, e.c.type, order, where), None, correlated)


def _property(e: FromClause, name: str, kind: str) -> ColumnElement[Any]:
    if name == "value" and kind == "number":
        return e.c.value  # the typed hot column, filled from properties.value
    return json_property(e, name, kind)  # type: ignore[no-any-return]


def _comparison(
    op: Callable[[Any, Any], Any], other: ColumnElement[Any]
) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    return lambda value: op(value, other)


def _same_for_everyone(node: Node) -> bool:
    return isinstance(node, Const | StoreAvg)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def _same_kind(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b)


def _same(a: Any, b: Any) -> bool:
    return _same_kind(a, b) and bool(a == b)


def _iso_text(value: Any) -> Any:
    """ISO text for a date constant (``19900615`` reads as 1990-06-15, as Python does)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return date.fromisoformat(value).isoformat()
    return value
