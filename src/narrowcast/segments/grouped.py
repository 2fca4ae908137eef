"""Per-customer values as one grouped query, so conditions become set operations.

``count('order', within='30d') >= 2`` could be asked customer by customer (a
correlated subquery per row), but a database answers it far faster as a set:
``customers.id IN (SELECT customer_id FROM events WHERE … GROUP BY customer_id
HAVING count(*) >= 2)`` — which is also how a person writes it by hand.

A ``PerCustomer`` holds both forms of one value:

* ``rows`` — ``SELECT customer_id, value`` with a row for every customer that
  has data (events of the type, a fitted score, …);
* ``empty`` — the value of every other customer (0 for ``count``, missing —
  ``None`` — for ``avg``), which decides whether a condition is asked as
  ``id IN (rows where it holds)`` or as ``NOT EXISTS (a row where it fails)``;
* ``correlated`` — the value for the current ``customers`` row, for the rare
  conditions that compare two per-customer values, and for ``explain``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, distinct, exists, false, func, not_, select

from narrowcast.store.schema import customers


@dataclass(frozen=True)
class PerCustomer:
    """One value per customer; see the module docstring."""

    rows: Select[Any]
    """``SELECT customer_id, value`` — at most one row per customer."""
    empty: Any
    """The value of a customer without a row; ``None`` means missing."""
    correlated: ColumnElement[Any]
    """The value for the current ``customers`` row (NULL when missing)."""

    def where(
        self, holds: Callable[[ColumnElement[Any]], ColumnElement[bool]], empty_holds: bool
    ) -> ColumnElement[bool]:
        """``customers.id`` is one of the customers for whom ``holds(value)`` is true.

        ``empty_holds`` says whether it holds for the customers without a row;
        the caller knows, because it knows the other side of the comparison.
        """
        grouped = self.rows.subquery()
        condition = known(holds(grouped.c.value))
        if not empty_holds:
            hits = select(grouped.c.customer_id).where(condition)
            return customers.c.id.in_(hits)
        # NOT EXISTS rather than NOT IN: PostgreSQL plans it as an anti-join, while a
        # NOT IN list that outgrows work_mem is rescanned for every customer. SQLite
        # materialises the grouped rows once either way.
        miss = grouped.c.customer_id == customers.c.id
        return not_(exists().where(miss, not_(condition)))


def known(condition: ColumnElement[Any]) -> ColumnElement[bool]:
    """The condition, with missing (NULL) read as false — two-valued logic."""
    return func.coalesce(condition, false())


def grouped(
    customer_id: ColumnElement[Any],
    value: ColumnElement[Any],
    where: list[ColumnElement[bool]],
) -> Select[Any]:
    """``SELECT customer_id, value … GROUP BY customer_id`` for an aggregate ``value``."""
    return (
        select(customer_id.label("customer_id"), value.label("value"))
        .where(*where)
        .group_by(customer_id)
    )


def count_distinct(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.count(distinct(column))


def latest(
    customer_id: ColumnElement[Any],
    value: ColumnElement[Any],
    order: tuple[ColumnElement[Any], ...],
    where: list[ColumnElement[bool]],
) -> Select[Any]:
    """``SELECT customer_id, value`` of each customer's latest row by ``order`` (descending)."""
    ranked = (
        select(
            customer_id.label("customer_id"),
            value.label("value"),
            func.row_number()
            .over(partition_by=customer_id, order_by=[o.desc() for o in order])
            .label("rank"),
        )
        .where(*where)
        .subquery()
    )
    return select(ranked.c.customer_id, ranked.c.value).where(ranked.c.rank == 1)


def mapped(
    source: PerCustomer, function: Callable[[ColumnElement[Any]], ColumnElement[Any]], empty: Any
) -> PerCustomer:
    """``function`` applied to every value of ``source`` (its ``empty`` becomes ``empty``)."""
    inner = source.rows.subquery()
    rows = select(inner.c.customer_id, function(inner.c.value).label("value"))
    return PerCustomer(rows, empty, function(source.correlated))
