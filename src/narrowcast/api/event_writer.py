"""Writing one API request's events: a small batch, straight into ``events``.

The importer's ``EventWriter`` is built for millions of rows in one
transaction: a staging table, COPY, statistics refreshed at the start, indexes
set aside for a big file. Per API request (a hundred events) that set-up is
most of the cost — and ``ANALYZE customers`` would also lock out concurrent
requests. This writer has the same interface for ``EventSink`` but writes a
batch with one statement and no staging table:

* PostgreSQL: one statement that looks up every event's customer and, only
  if all are known, inserts the batch with ``ON CONFLICT (event_id) DO
  NOTHING``; it answers the number inserted and the events whose customer is
  missing. The batch travels as one JSON document (``json_to_recordset``)
  serialised by orjson: psycopg's array dumpers handled six 100-element
  arrays element by element in Python, and the customer check as an
  ``IN (…)`` of 100 expanded parameters made SQLAlchemy re-render (and
  psycopg re-parse) a new SQL text per request — together half the server's
  CPU per request (``bench/README.md``). One unchanging SQL text also lets
  psycopg prepare it on each connection after a few uses.
* SQLite: an indexed lookup of the customers first, then ``executemany`` of
  ``INSERT … ON CONFLICT DO NOTHING``.

Either way nothing is written when a customer is unknown, so the caller can
refuse the request. The event properties already catalogued are remembered
across requests (``Catalogue``), so a steady stream of known event shapes
writes nothing to ``event_properties``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from narrowcast.store.bulk import (
    EventBatchResult,
    StagedEvent,
    first_of_each_event_id,
    insert_ignoring_conflicts,
    instant_encoder,
)
from narrowcast.store.schema import customers, event_properties

# ``keep``: the first event of each event_id in the batch (the rest are duplicates).
# The customer is looked up by a scalar subquery per event, an index probe each,
# whatever the statistics say (a hash join would read the whole customers table).
_PG_WRITE = """
WITH batch AS (
    SELECT * FROM json_to_recordset(%s::json) AS b(
        line bigint, event_id text, customer_id text, type text, ts timestamptz,
        value float8, properties jsonb, keep boolean)
), unknown AS (
    SELECT line, customer_id FROM batch
    WHERE (SELECT c.id FROM customers c WHERE c.id = batch.customer_id) IS NULL
), inserted AS (
    INSERT INTO events (event_id, customer_id, type, ts, value, properties)
    SELECT event_id, customer_id, type, ts, value, properties FROM batch
    WHERE keep AND NOT EXISTS (SELECT FROM unknown)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted),
       (SELECT coalesce(json_agg(json_build_array(line, customer_id)), '[]') FROM unknown)
"""
_PG_FIELDS = ("line", "event_id", "customer_id", "type", "ts", "value", "properties", "keep")
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
        if self._dialect == "postgresql":
            return self._write_postgresql(rows)
        unknown = self._unknown(rows)
        if unknown:
            # The caller refuses the whole request: write nothing.
            return EventBatchResult(0, 0, unknown)
        first = first_of_each_event_id(rows)
        inserted = self._insert_sqlite(first) if first else 0
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

    def _write_postgresql(self, rows: Sequence[StagedEvent]) -> EventBatchResult:
        with self._raw.cursor() as cursor:
            cursor.execute(_PG_WRITE, [_json_batch(rows)])
            inserted, unknown = cursor.fetchone()
        if unknown:
            missing = [(int(line), str(customer)) for line, customer in unknown]
            return EventBatchResult(0, 0, missing)
        return EventBatchResult(int(inserted), len(rows) - int(inserted), [])

    def _insert_sqlite(self, rows: Sequence[StagedEvent]) -> int:
        before = self._raw.total_changes
        self._raw.executemany(_SQLITE_INSERT, [row[1:] for row in rows])
        return int(self._raw.total_changes - before)


def _json_batch(rows: Sequence[StagedEvent]) -> str:
    """The rows as a JSON array of objects for ``json_to_recordset``.

    ``properties`` is already JSON text: it is spliced in, not encoded again
    as a string (which PostgreSQL would then have to parse twice). ``keep``
    marks the first event of each event id, as ``first_of_each_event_id``.
    """
    parts = []
    seen: set[str] = set()
    for row in rows:
        head = _dumps(dict(zip(_PG_FIELDS[:6], row[:6], strict=True)))
        event_id = row[1]
        keep = b"true"
        if event_id is not None:
            if event_id in seen:
                keep = b"false"
            seen.add(event_id)
        parts.append(head[:-1] + b',"properties":' + row[6].encode() + b',"keep":' + keep + b"}")
    return (b"[" + b",".join(parts) + b"]").decode()


_dumps = orjson.dumps


__all__ = ["Catalogue", "DirectEventWriter"]
