"""Several event conditions of one rule answered by one grouped scan of the events.

``ever('recommendation_click') and not ever('order')`` or ``2000 <= avg('order',
'value') <= 10000`` are two conditions on the same customer's events. Asked one
by one they cost one grouped scan each; a person writes one scan with
conditional aggregates::

    SELECT customer_id FROM events
    WHERE type IN ('recommendation_click', 'order') AND ts <= :now
    GROUP BY customer_id
    HAVING count(CASE WHEN type = 'recommendation_click' THEN 1 END) > 0
       AND NOT count(CASE WHEN type = 'order' THEN 1 END) > 0

and so does the compiler, for any ``and`` / ``or`` / ``not`` combination of
such conditions (their windows and property filters move into the ``CASE``).
A conditional aggregate over a customer's events is exactly the aggregate
over the events it selects — ``count`` of none is 0, ``avg`` of none is NULL —
so the ``HAVING`` clause decides every customer who has any of the scanned
events, and the customers with none are decided once, in Python, from each
condition's value on no events (``empty_holds``): the scan is then asked as
``id IN (groups where it holds)`` or ``NOT EXISTS (a group where it fails)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, exists, literal, not_, or_, select

from narrowcast.segments.grouped import known
from narrowcast.store.schema import Instant, customers, events


@dataclass(frozen=True)
class Conditional:
    """A per-customer event aggregate, written against a shared scan of ``events``."""

    types: frozenset[str]
    """The event types it reads."""
    since: datetime | None
    """The oldest instant it reads (exclusive); None reads the whole history."""
    value: Callable[[FromClause], ColumnElement[Any]]
    """The aggregate over the scanned events of one customer (``e`` is the scan)."""
    empty: Any
    """Its value for a customer without any of those events (None: missing)."""


@dataclass(frozen=True)
class Leaf:
    """One condition on a ``Conditional``: ``holds(value)``, and whether it holds on none."""

    source: Conditional
    holds: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    empty_holds: bool


@dataclass(frozen=True)
class Combination:
    """``and`` / ``or`` / ``not`` over leaves, as the rule wrote them."""

    op: str  # "and" | "or" | "not"
    items: tuple[Shape, ...]


Shape = Leaf | Combination


def shared_scan(shape: Shape, now: datetime) -> ColumnElement[bool]:
    """``customers.id`` satisfies ``shape``, asked with one grouped scan of the events."""
    leaves = _leaves(shape)
    types = sorted(set().union(*(leaf.source.types for leaf in leaves)))
    e = events.alias("scan")
    where = [e.c.type.in_(types), e.c.ts <= literal(now, Instant)]
    bounds = [leaf.source.since for leaf in leaves]
    if all(bound is not None for bound in bounds):
        where.append(e.c.ts > literal(min(b for b in bounds if b is not None), Instant))
    condition = _condition(shape, e)
    groups = select(e.c.customer_id).where(*where).group_by(e.c.customer_id)
    if not _empty_holds(shape):
        return customers.c.id.in_(groups.having(condition))
    # NOT EXISTS rather than NOT IN: see grouped.PerCustomer.where.
    misses = groups.having(not_(condition)).subquery()
    return not_(exists().where(misses.c.customer_id == customers.c.id))


def _leaves(shape: Shape) -> list[Leaf]:
    if isinstance(shape, Leaf):
        return [shape]
    return [leaf for item in shape.items for leaf in _leaves(item)]


def _condition(shape: Shape, e: FromClause) -> ColumnElement[bool]:
    if isinstance(shape, Leaf):
        return known(shape.holds(shape.source.value(e)))
    parts = [_condition(item, e) for item in shape.items]
    if shape.op == "not":
        return not_(parts[0])
    return and_(*parts) if shape.op == "and" else or_(*parts)


def _empty_holds(shape: Shape) -> bool:
    if isinstance(shape, Leaf):
        return shape.empty_holds
    results = [_empty_holds(item) for item in shape.items]
    if shape.op == "not":
        return not results[0]
    return all(results) if shape.op == "and" else any(results)
