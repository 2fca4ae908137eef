"""Writing one API request's events: a small batch, straight into ``events``.

The importer's ``EventWriter`` is built for millions of rows in one
transaction: a staging table, COPY, statistics refreshed at the start, indexes
set aside for a big file. Per API request (a hundred events) that set-up is
most of the cost — and ``ANALYZE customers`` would also lock out concurrent
requests. This writer has the same interface for ``EventSink`` but writes a
batch with one statement and no staging table:

* PostgreSQL: ``INSERT … SELECT … FROM unnest(arrays) … ON CONFLICT DO NOTHING``
  (one round trip for the whole batch);
* SQLite: ``executemany`` of ``INSERT … ON CONFLICT DO NOTHING``.

Unknown customers are found first with one indexed lookup, so the caller can
refuse the request before anything is written. The event properties already
catalogued are remembered across requests (``Catalogue``), so a steady stream
of known event shapes writes nothing to ``event_properties``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from narrowcast.store.bulk import (
    EventBatchResult,
    StagedEvent,
    first_of_each_event_id,
    insert_ignoring_conflicts,
    instant_encoder,
)
from narrowcast.store.schema import customers, event_properties

_PG_INSERT = (
    "INSERT INTO events (event_id, customer_id, type, ts, value, properties) "
    "SELECT s.event_id, s.customer_id, s.type, s.ts, s.value, s.properties::jsonb "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::float8[], "
    "%s::text[]) AS s(event_id, customer_id, type, ts, value, properties) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_SQLITE_INSERT = (
    "INSERT INTO events (event_id, customer_id, type, ts, value, properties) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)


class Catalogue:
    """(event type, property) pairs known to be in ``event_properties``, shared by requests."""

    def __init__(self) -> None:
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def new(self, seen: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        with self._lock:
            return [key for key in seen if (key[0], key[1]) not in self._known]

    def remember(self, written: Iterable[tuple[str, str, str]]) -> None:
        with self._lock:
            self._known.update((t, p) for t, p, _ in written)


class DirectEventWriter:
    """``EventSink``'s writer for one small batch per transaction (the HTTP API)."""

    def __init__(self, conn: Connection, catalogue: Catalogue) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name
        raw = conn.connection.driver_connection
        assert raw is not None, "the connection is closed"
        self._raw: Any = raw
        self._catalogue = catalogue
        self._rows: list[StagedEvent] = []
        self._written: list[tuple[str, str, str]] = []

    @property
    def encode_ts(self) -> Callable[[datetime], Any]:
        return instant_encoder(self._dialect)

    def stage(self, rows: Sequence[StagedEvent]) -> None:
        self._rows.extend(rows)

    def move(self, staged: int) -> EventBatchResult:
        rows, self._rows = self._rows, []
        if not rows:
            return EventBatchResult(0, 0, [])
        unknown = self._unknown(rows)
        if unknown:
            # The caller refuses the whole request: write nothing.
            return EventBatchResult(0, 0, unknown)
        first = first_of_each_event_id(rows)
        inserted = self._insert(first) if first else 0
        return EventBatchResult(inserted, len(rows) - inserted, [])

    def catalogue(self, seen: Iterable[tuple[str, str, str]], now: datetime) -> None:
        new = self._catalogue.new(seen)
        if not new:
            return
        unique = sorted({(t, p): (t, p, v) for t, p, v in new}.values())
        rows = [
            {"type": t, "property": p, "value_type": v, "first_seen_at": now} for t, p, v in unique
        ]
        insert_ignoring_conflicts(self._conn, event_properties, rows, ["type", "property"])
        self._written.extend(unique)

    def close(self) -> None:
        """The request is about to commit: what it catalogued is now known to others."""
        self._catalogue.remember(self._written)

    def abandon(self) -> None:
        self._written = []

    def _unknown(self, rows: Sequence[StagedEvent]) -> list[tuple[int, str]]:
        """(line, customer id) of the events whose customer is not in the store."""
        wanted = sorted({row[2] for row in rows})
        known = set(self._conn.scalars(select(customers.c.id).where(customers.c.id.in_(wanted))))
        return [(row[0], row[2]) for row in rows if row[2] not in known]

    def _insert(self, rows: Sequence[StagedEvent]) -> int:
        if self._dialect == "postgresql":
            columns = list(zip(*rows, strict=True))
            with self._raw.cursor() as cursor:
                cursor.execute(_PG_INSERT, [list(column) for column in columns[1:]])
                return int(cursor.rowcount)
        before = self._raw.total_changes
        self._raw.executemany(_SQLITE_INSERT, [row[1:] for row in rows])
        return int(self._raw.total_changes - before)


__all__ = ["Catalogue", "DirectEventWriter"]
