"""What the importer tests look at: the rows of the store, read back with plain SQL.

Kept apart from ``conftest.py`` so tests import it by name; every function takes
the ``Store`` the test is running on, SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from narrowcast.store import Store
from narrowcast.store.schema import (
    attribute_keys,
    consents,
    customers,
    event_properties,
    events,
    metadata,
)

IMPORTED_TABLES = (customers, attribute_keys, consents, events, event_properties)
SEEDED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def add_customers(store: Store, ids: Iterable[str]) -> None:
    """Customers that events can belong to, written straight into the table."""
    rows = [
        {"id": cid, "created_at": SEEDED_AT, "updated_at": SEEDED_AT, "attributes": {}}
        for cid in ids
    ]
    with store.begin() as conn:
        conn.execute(insert(customers), rows)


def row_counts(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in IMPORTED_TABLES
        }


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order, to compare before and after."""
    with store.connect() as conn:
        return {
            table.name: sorted(
                (tuple(str(value) for value in row) for row in conn.execute(select(table))),
            )
            for table in metadata.sorted_tables
        }


def stored_events(store: Store) -> list[dict[str, Any]]:
    """Events in insertion order, without the surrogate key."""
    with store.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.id)).mappings()
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def stored_customer(store: Store, customer_id: str) -> dict[str, Any]:
    with store.connect() as conn:
        row = conn.execute(select(customers).where(customers.c.id == customer_id)).mappings()
        return dict(row.one())


def stored_consents(store: Store) -> dict[tuple[str, str], tuple[bool, str]]:
    """(customer, channel) → (granted, source) for marketing consent."""
    with store.connect() as conn:
        rows = conn.execute(select(consents).where(consents.c.purpose == "marketing"))
        return {(r.customer_id, r.channel): (r.granted, r.source) for r in rows}


def attribute_types(store: Store) -> dict[str, str]:
    with store.connect() as conn:
        return dict(conn.execute(select(attribute_keys.c.key, attribute_keys.c.value_type)).all())


def property_types(store: Store) -> dict[tuple[str, str], str]:
    with store.connect() as conn:
        rows = conn.execute(select(event_properties)).all()
        return {(r.type, r.property): r.value_type for r in rows}
