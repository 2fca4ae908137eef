"""Turning a checked rule into one SQL query (SQLAlchemy Core) for both databases.

Every rule becomes ``SELECT customers.id FROM customers WHERE <predicate>``.
Per-customer event aggregates are correlated subqueries that the index
``ix_events_customer_type_ts`` answers; store-wide ones are uncorrelated and
run once.

Two-valued logic: SQL comparisons with NULL are "unknown", and ``NOT unknown``
is still unknown, so ``not X`` would lose the customers for whom X is missing.
Every atomic condition is therefore wrapped as ``coalesce(condition, false)``:
a comparison with a missing value is false, and ``not X`` is exactly the
complement of ``X``.

Names never reach SQL as text: attributes map to columns or to a JSON path
bound as a parameter, and every value is a bound parameter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    FromClause,
    Select,
    and_,
    case,
    distinct,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from narrowcast.segments.language import (
    Aggregate,
    Attr,
    BoolOp,
    Compare,
    Const,
    Geo,
    In,
    Node,
    Not,
    SegmentRef,
    StoreAvg,
    Truth,
)
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
_OPERATORS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _WholeDaysSince(FunctionElement[float]):
    """floor((now − ts) in days), for a ts ≤ now."""

    inherit_cache = True
    type = Float()


@compiles(_WholeDaysSince, "sqlite")
def _days_sqlite(element: _WholeDaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    # Truncation is floor here: the difference is never negative (ts ≤ now).
    return f"CAST(julianday({now}) - julianday({ts}) AS INTEGER)"


@compiles(_WholeDaysSince, "postgresql")
def _days_postgresql(element: _WholeDaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    now, ts = (compiler.process(c, **kw) for c in element.clauses)
    return f"floor(extract(epoch FROM ({now} - {ts})) / 86400)"


class _AgeInYears(FunctionElement[float]):
    """Whole years between a birth date and a date."""

    inherit_cache = True
    type = Float()


@compiles(_AgeInYears, "sqlite")
def _age_sqlite(element: _AgeInYears, compiler: SQLCompiler, **kw: Any) -> str:
    today, born = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(CAST(strftime('%Y', {today}) AS INTEGER) - CAST(strftime('%Y', {born}) AS INTEGER)"
        f" - (strftime('%m-%d', {today}) < strftime('%m-%d', {born})))"
    )


@compiles(_AgeInYears, "postgresql")
def _age_postgresql(element: _AgeInYears, compiler: SQLCompiler, **kw: Any) -> str:
    today, born = (compiler.process(c, **kw) for c in element.clauses)
    return f"date_part('year', age({today}, {born}))"


class Compiler:
    """Compiles checked rules for one evaluation instant ``now`` (aware, any zone)."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("the evaluation instant must be aware")
        # In UTC: windows are exact durations (no wall-clock DST shifts) and age
        # is counted on the UTC date, whatever zone the caller's instant was in.
        self.now = now.astimezone(UTC)
        self._now = literal(self.now, Instant)

    def query(self, rule: Node) -> Select[tuple[str]]:
        """``SELECT customers.id`` of every customer the rule matches."""
        return select(customers.c.id).where(self.predicate(rule))

    def predicate(self, node: Node) -> ColumnElement[bool]:
        """A condition that is never NULL."""
        if isinstance(node, BoolOp):
            parts = [self.predicate(item) for item in node.items]
            return and_(*parts) if node.op == "and" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.predicate(node.item))
        if isinstance(node, SegmentRef):
            return self.predicate(node.rule)
        if isinstance(node, Compare):
            left, right = self._dated(node.left, node.right), self._dated(node.right, node.left)
            return _known(_OPERATORS[node.op](left, right))
        if isinstance(node, In):
            item = self.value(node.item)
            values = list(node.values)
            return _known(item.not_in(values) if node.negated else item.in_(values))
        if isinstance(node, Geo):
            return and_(
                *(
                    _known(customers.c[column] == part)
                    for column, part in zip(_GEO_COLUMNS, node.parts, strict=False)
                )
            )
        if isinstance(node, Const) and node.type == "bool":
            return true() if node.value else false()
        if isinstance(node, Truth):
            if isinstance(node.item, Aggregate) and node.item.function == "ever":
                return self._ever(node.item)
            return _known(self.value(node.item) == literal(True, Boolean))
        raise TypeError(f"not a condition: {node!r}")

    def value(self, node: Node) -> ColumnElement[Any]:
        """A value that may be NULL (missing)."""
        if isinstance(node, Const):
            return literal(node.value, Float) if node.type == "number" else literal(node.value)
        if isinstance(node, Attr):
            return self._attribute(node)
        if isinstance(node, Aggregate):
            if node.function == "ever":
                return self._ever(node)
            return self._aggregate(node)
        if isinstance(node, StoreAvg):
            e = events.alias("se")
            where = [e.c.type == node.event_type, *self._window(e, node.within)]
            column = self._property(e, node.property, "number")
            return select(func.avg(column)).where(*where).scalar_subquery()
        return case((self.predicate(node), True), else_=False)

    def _dated(self, node: Node, other: Node) -> ColumnElement[Any]:
        """A text constant compared with a date is bound as a date (PostgreSQL needs it)."""
        if isinstance(node, Const) and node.type == "text" and other.type == "date":
            return literal(date.fromisoformat(node.value), Date)
        return self.value(node)

    def _attribute(self, node: Attr) -> ColumnElement[Any]:
        if node.name == "age":
            return _AgeInYears(literal(self.now.date(), Date), customers.c.birth_date)
        if node.name in COLUMN_ATTRIBUTES:
            return customers.c[node.name]
        value = customers.c.attributes[node.name]
        if node.type == "number":
            return cast(ColumnElement[Any], value.as_float())
        if node.type == "bool":
            return cast(ColumnElement[Any], value.as_boolean())
        return cast(ColumnElement[Any], value.as_string())

    def _events(self, node: Aggregate) -> tuple[FromClause, list[ColumnElement[bool]]]:
        e = events.alias("e")
        where = [e.c.customer_id == customers.c.id, e.c.type == node.event_type]
        where += self._window(e, node.within)
        for key, wanted in node.filters:
            kind = (
                "number"
                if isinstance(wanted, int | float) and not isinstance(wanted, bool)
                else ("bool" if isinstance(wanted, bool) else "text")
            )
            where.append(self._property(e, key, kind) == wanted)
        return e, where

    def _window(self, e: FromClause, within: Any) -> list[ColumnElement[bool]]:
        where = [e.c.ts <= self._now]
        if within is not None:
            where.append(e.c.ts > literal(self.now - within, Instant))
        return where

    @staticmethod
    def _property(e: FromClause, name: str, kind: str) -> ColumnElement[Any]:
        if name == "value" and kind == "number":
            return e.c.value  # the typed hot column, filled from properties.value
        prop = e.c.properties[name]
        if kind == "number":
            return cast(ColumnElement[Any], prop.as_float())
        if kind == "bool":
            return cast(ColumnElement[Any], prop.as_boolean())
        return cast(ColumnElement[Any], prop.as_string())

    def _ever(self, node: Aggregate) -> ColumnElement[bool]:
        e, where = self._events(node)
        return exists().where(*where)

    def _aggregate(self, node: Aggregate) -> ColumnElement[Any]:
        e, where = self._events(node)
        function = node.function
        if function == "count":
            return select(func.count()).where(*where).scalar_subquery()
        if function == "last":
            assert node.property is not None
            column = self._property(e, node.property, node.type)
            ordered = select(column).where(*where).order_by(e.c.ts.desc(), e.c.id.desc())
            return ordered.limit(1).scalar_subquery()
        if function in ("days_since", "days_since_first"):
            latest = func.max(e.c.ts) if function == "days_since" else func.min(e.c.ts)
            return select(_WholeDaysSince(self._now, latest)).where(*where).scalar_subquery()
        assert node.property is not None
        kind = "number" if function != "distinct" else "text"
        column = self._property(e, node.property, kind)
        if function == "distinct":
            return select(func.count(distinct(column))).where(*where).scalar_subquery()
        if function == "sum":
            total = select(func.sum(column)).where(*where).scalar_subquery()
            return func.coalesce(total, 0.0)
        if function == "avg":
            return select(func.avg(column)).where(*where).scalar_subquery()
        if function == "min":
            return select(func.min(column)).where(*where).scalar_subquery()
        return select(func.max(column)).where(*where).scalar_subquery()


def _known(condition: ColumnElement[Any]) -> ColumnElement[bool]:
    return func.coalesce(condition, false())
