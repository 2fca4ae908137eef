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

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    exists,
    literal,
    not_,
    or_,
    select,
    true,
)

from narrowcast.segments.grouped import known
from narrowcast.store.schema import Instant, customers, events


@dataclass(frozen=True)
class Conditional:
    """A per-customer event aggregate, written against a shared scan of ``events``."""

    key: Hashable
    """Equal for aggregates that read the same events (same type, window, filters)."""
    types: frozenset[str]
    """The event types it reads."""
    since: datetime | None
    """The oldest instant it reads (exclusive); None reads the whole history."""
    selects: Callable[[FromClause], ColumnElement[bool]]
    """Which scanned events it reads (type, window, property filters)."""
    value: Callable[[FromClause, ColumnElement[bool] | None], ColumnElement[Any]]
    """The aggregate over one customer's scanned events ``e``, reading only those where
    the second argument holds (``CASE WHEN … THEN …``), or all of them when it is None."""
    empty: Any
    """Its value for a customer without any of those events (None: missing)."""
    filtered: bool = False
    """True when it keeps only some events of its types (property filters)."""


@dataclass(frozen=True)
class Leaf:
    """One condition on a ``Conditional``: ``holds(value)``, and whether it holds on none."""

    source: Conditional
    holds: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    empty_holds: bool
    presence: bool = False
    """True for a bare ``ever(…)``: it holds when the customer has one of its events."""


@dataclass(frozen=True)
class Combination:
    """``and`` / ``or`` / ``not`` over leaves, as the rule wrote them."""

    op: str  # "and" | "or" | "not"
    items: tuple[Shape, ...]


Shape = Leaf | Combination


def shared_scan(shape: Shape, now: datetime) -> ColumnElement[bool]:
    """``customers.id`` satisfies ``shape``, asked with one grouped scan of the events."""
    if not _empty_holds(shape):
        return customers.c.id.in_(matching(shape, now))
    # NOT EXISTS rather than NOT IN: see grouped.PerCustomer.where.
    misses = _groups(shape, now, holding=False).subquery()
    return not_(exists().where(misses.c.customer_id == customers.c.id))


def matching(shape: Shape, now: datetime) -> Select[Any]:
    """``SELECT customer_id`` of the customers with events for whom ``shape`` holds.

    When ``shape`` does not hold for customers without events, that is its whole
    answer: ``Compiler.query`` returns it as it is, as a person would write it.
    """
    return _groups(shape, now, holding=True)


def holds_without_events(shape: Shape) -> bool:
    return _empty_holds(shape)


def _groups(shape: Shape, now: datetime, *, holding: bool) -> Select[Any]:
    leaves = _leaves(shape)
    types = sorted(set().union(*(leaf.source.types for leaf in leaves)))
    e = events.alias("scan")
    where = [e.c.type.in_(types), e.c.ts <= literal(now, Instant)]
    bounds = [leaf.source.since for leaf in leaves]
    since = _since(bounds)
    if since is not None:
        where.append(e.c.ts > literal(since, Instant))
    alone = len({leaf.source.key for leaf in leaves}) == 1
    if alone:
        # One aggregate: the scan selects exactly its events, and it needs no CASE.
        where.append(leaves[0].source.selects(e))
    # Aggregates that read every scanned event of their types, and of those the ones
    # that read every scanned event at all (which need no CASE either).
    plain = {
        leaf.source.key
        for leaf in leaves
        if not leaf.source.filtered and leaf.source.since == since
    }
    whole = {
        leaf.source.key
        for leaf in leaves
        if alone or (leaf.source.key in plain and leaf.source.types == frozenset(types))
    }
    condition = _condition(shape, _Scan(e, frozenset(types), plain, whole))
    groups = select(e.c.customer_id).where(*where).group_by(e.c.customer_id)
    return groups.having(condition if holding else not_(condition))


def _leaves(shape: Shape) -> list[Leaf]:
    if isinstance(shape, Leaf):
        return [shape]
    return [leaf for item in shape.items for leaf in _leaves(item)]


def _since(bounds: list[datetime | None]) -> datetime | None:
    """The scan's lower bound: the oldest window, or None when one condition has none."""
    if any(bound is None for bound in bounds):
        return None
    return min(b for b in bounds if b is not None)


@dataclass(frozen=True)
class _Scan:
    e: FromClause
    types: frozenset[str]
    plain: set[Hashable]
    whole: set[Hashable]


def _condition(shape: Shape, scan: _Scan) -> ColumnElement[bool]:
    if isinstance(shape, Leaf):
        source = shape.source
        only = None if source.key in scan.whole else source.selects(scan.e)
        return known(shape.holds(source.value(scan.e, only)))
    if shape.op == "or" and _covers(shape, scan):
        return true()
    parts = [_condition(item, scan) for item in shape.items]
    if shape.op == "not":
        return not_(parts[0])
    return and_(*parts) if shape.op == "and" else or_(*parts)


def _covers(shape: Combination, scan: _Scan) -> bool:
    """``ever(a) or ever(b) …`` over every scanned type: true for every scanned customer."""
    present: set[str] = set()
    for item in shape.items:
        if isinstance(item, Leaf) and item.presence and item.source.key in scan.plain:
            present |= item.source.types
    return present == scan.types


def _empty_holds(shape: Shape) -> bool:
    if isinstance(shape, Leaf):
        return shape.empty_holds
    results = [_empty_holds(item) for item in shape.items]
    if shape.op == "not":
        return not results[0]
    return all(results) if shape.op == "and" else any(results)
