"""``narrowcast demo``: a synthetic shop written to the store in constant memory.

Customers are drawn a chunk at a time and each chunk is written in one
transaction, so a million customers need no more memory than a few thousand.
Drawing is Python work and writing is mostly the database's, so with more
than one core, worker processes draw the next chunks while the main process
writes the current one. (A thread would not help: SQLite's ``executemany``
hands the GIL back for every row and then waits for the drawing thread to
release it.)

Running the demo again with the same seed and ``now`` changes nothing:
customers and consents are upserted by key, and device tokens and events are
inserted by their unique token and ``event_id`` (``demo-{seed}-{customer}-{n}``),
so duplicates are skipped. A different seed redraws the same customer ids and
adds its events next to the old ones.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from narrowcast.demo.chunk import Chunk, draw_chunk
from narrowcast.demo.personas import PERSONAS
from narrowcast.store import Store
from narrowcast.store.bulk import (
    EventWriter,
    insert_ignoring_conflicts,
    instant_encoder,
    upsert,
)
from narrowcast.store.schema import attribute_keys, consents, customers, device_tokens

CHUNK = 2_000
"""Customers per transaction: about 25,000 events."""
_MAX_WORKERS = 4
"""More drawing processes than this only wait for the database."""


@dataclass
class DemoReport:
    """What one ``generate_demo`` run wrote."""

    seed: int
    now: datetime
    customers: int = 0
    events: int = 0
    new_events: int = 0
    """Events not in the store before (the rest were there from an earlier run)."""
    device_tokens: int = 0
    consents: int = 0
    consents_granted: int = 0
    personas: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.customers / self.seconds if self.seconds > 0 else 0.0
        skipped = self.events - self.new_events
        personas = ", ".join(
            f"{p.name} {self.personas[p.name]:,}" for p in PERSONAS if self.personas[p.name]
        )
        return (
            f"demo shop (seed {self.seed}, as of {self.now:%Y-%m-%d %H:%M} UTC): "
            f"{self.customers:,} customers, {self.events:,} events"
            + (f" ({skipped:,} already stored)" if skipped else "")
            + f", {self.device_tokens:,} device tokens, {self.consents:,} consents "
            f"({self.consents_granted:,} granted) in {self.seconds:.1f} s "
            f"({rate:,.0f} customers/s)\npersonas: {personas or 'none'}"
        )


def generate_demo(
    store: Store,
    *,
    customers: int,
    seed: int,
    now: datetime,
    on_customers: Callable[[int], None] | None = None,
) -> DemoReport:
    """Write ``customers`` demo customers with their history up to ``now`` into ``store``.

    ``on_customers`` is called after every committed chunk with the number of
    customers it held. The store's schema must be current.

    Beyond one chunk, on a machine with a spare core, the drawing runs in
    worker processes started with ``spawn``; a script that calls this must,
    as with any ``multiprocessing`` user, do so under
    ``if __name__ == "__main__":``.
    """
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive: pass an aware instant")
    if customers < 0:
        raise ValueError(f"customers={customers}: expected 0 or more")
    started = time.perf_counter()
    now = now.astimezone(UTC)
    report = DemoReport(seed=seed, now=now)
    ranges = [range(n, min(n + CHUNK, customers + 1)) for n in range(1, customers + 1, CHUNK)]
    writer = _ChunkWriter(store, report)
    for chunk in _drawn(seed, ranges, now, instant_encoder(store.dialect)):
        writer.write(chunk)
        if on_customers is not None:
            on_customers(len(chunk.customers))
    report.seconds = time.perf_counter() - started
    return report


def _drawn(
    seed: int, ranges: Sequence[range], now: datetime, encode: Callable[[datetime], Any]
) -> Iterator[Chunk]:
    """The chunks in order; drawn ahead by worker processes when there are spare cores."""
    workers = min(_MAX_WORKERS, _cores() - 1, len(ranges) - 1)
    if workers < 1:
        for numbers in ranges:
            yield draw_chunk(seed, numbers, now, encode)
        return
    # spawn, not fork: the caller may run threads (a progress bar) that fork would copy
    # mid-lock, and it is what macOS and Windows do anyway.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        todo = iter(ranges)
        pending: deque[Future[Chunk]] = deque()
        try:
            # Two chunks per worker in flight: enough to keep them busy, bounded memory.
            for numbers in todo:
                pending.append(pool.submit(draw_chunk, seed, numbers, now, encode))
                if len(pending) == 2 * workers:
                    break
            while pending:
                chunk = pending.popleft().result()
                numbers_left = next(todo, None)
                if numbers_left is not None:
                    pending.append(pool.submit(draw_chunk, seed, numbers_left, now, encode))
                yield chunk
        finally:
            for future in pending:
                future.cancel()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _ChunkWriter:
    """Writes chunks, one transaction each, and counts what they held."""

    def __init__(self, store: Store, report: DemoReport) -> None:
        self._store = store
        self._report = report
        self._attributes: set[str] = set()
        self._properties: set[tuple[str, str, str]] = set()

    def write(self, chunk: Chunk) -> None:
        report = self._report
        new_attributes = [
            {"key": key, "value_type": value_type, "first_seen_at": report.now}
            for key, value_type in sorted(chunk.attributes.items())
            if key not in self._attributes
        ]
        new_properties = sorted(chunk.properties - self._properties)
        with self._store.begin() as conn:
            upsert(conn, customers, chunk.customers, ["id"])
            insert_ignoring_conflicts(conn, attribute_keys, new_attributes, ["key"])
            upsert(conn, consents, chunk.consents, ["customer_id", "channel", "purpose"])
            insert_ignoring_conflicts(conn, device_tokens, chunk.tokens, ["token"])
            events = EventWriter(conn)
            if chunk.events:
                report.new_events += events.write(chunk.events).inserted
            events.catalogue(new_properties, report.now)
            events.close()
        self._attributes.update(chunk.attributes)
        self._properties.update(new_properties)
        report.customers += len(chunk.customers)
        report.events += len(chunk.events)
        report.device_tokens += len(chunk.tokens)
        report.consents += len(chunk.consents)
        report.consents_granted += sum(1 for consent in chunk.consents if consent["granted"])
        report.personas.update(chunk.personas)
