"""The import loop shared by every importer: read, parse, batch, write, report.

An import is one database transaction. By default it is all-or-nothing: the
first bad row switches the run to "report only", up to ``max_errors`` problems
are collected, and the transaction is rolled back, so the store looks as if
the import never ran — also when the process is killed half-way, because an
uncommitted transaction is simply discarded by the database. With
``skip_invalid`` the good rows are stored and every bad one is written, with
its reason, to ``FILE.rejects.jsonl``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

import orjson
from sqlalchemy import Connection

from narrowcast.ingest.errors import ImportFailed, RowError
from narrowcast.ingest.sources import Row, Source, read_rows
from narrowcast.store import Store

Item = TypeVar("Item")
Item_co = TypeVar("Item_co", covariant=True)


class Sink(Protocol[Item]):
    """What one kind of import (customers, events) plugs into the loop."""

    def parse(self, row: Row) -> Item:
        """A typed record for a row, or ``ValueError`` with the reason to show."""
        ...

    def writer(self, items: list[Item]) -> Callable[[], list[tuple[int, str]]]:
        """The write of one full batch, to run on the writer thread.

        Called on the parsing thread; whatever the write needs from the sink's
        parsing state must be taken here, because ``parse`` goes on while the
        returned job runs. The job returns (line, reason) for every item the
        store refused.
        """
        ...

    def finish(self) -> None:
        """The import is about to commit: complete whatever the writes left to do."""
        ...

    def abandon(self) -> None:
        """The import is about to roll back: undo only what the rollback does not."""
        ...


@dataclass
class ImportReport:
    """What an import did, for the one-line summary and for tests."""

    kind: str
    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None
    errors: list[RowError] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.inserted + self.updated

    def summary(self) -> str:
        parts = [f"{self.read:,} rows read", f"{self.inserted:,} new"]
        if self.kind == "customers":
            parts.append(f"{self.updated:,} updated")
        if self.duplicates:
            noun = "duplicate" if self.duplicates == 1 else "duplicates"
            parts.append(f"{self.duplicates:,} {noun} skipped")
        if self.rejected:
            where = f" (see {self.rejects_path})" if self.rejects_path else ""
            parts.append(f"{self.rejected:,} rejected{where}")
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.source}: imported {self.kind} — {', '.join(parts)} "
            f"in {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


# Bigger batches spread PostgreSQL's per-statement costs (+22 % at 1 M events);
# on SQLite they would push the importer past its memory budget, most of which
# is the page cache.
DEFAULT_BATCH_SIZE = {"postgresql": 50_000, "sqlite": 10_000}


@dataclass
class ImportOptions:
    skip_invalid: bool = False
    rejects_path: Path | None = None
    """Where ``skip_invalid`` writes rejects; default ``FILE.rejects.jsonl``."""
    batch_size: int | None = None
    """Rows per batch; by default 50,000 on PostgreSQL and 10,000 on SQLite."""
    max_errors: int = 20
    on_bytes: Callable[[int], None] | None = None
    rebuild_indexes_above: float | None = 0.25
    """Events: once an import has written more than this fraction of the events already
    stored (and at least 100,000), drop the secondary indexes and rebuild them before
    the commit, in the same transaction; ``None`` never does. Faster for big imports,
    but on PostgreSQL other sessions' queries of events and customers wait until the
    import commits."""


class _Rejects:
    """Collects bad rows: the first few for the error message, or all to a file."""

    def __init__(self, report: ImportReport, options: ImportOptions, source: Source) -> None:
        self._report = report
        self._options = options
        self._source = source
        self._file: IO[bytes] | None = None
        if options.skip_invalid:
            path = options.rejects_path or _default_rejects_path(source)
            if not path.parent.is_dir():  # found now, not at the first bad row half-way in
                raise ImportFailed(
                    f"{path}: cannot write rejected rows there — {path.parent} is not a folder"
                )
            if path.is_dir():
                raise ImportFailed(f"{path}: is a folder — give --rejects a file name")
            path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
            report.rejects_path = path

    @property
    def full(self) -> bool:
        """All-or-nothing has seen enough to stop reading."""
        return not self._options.skip_invalid and self._report.rejected >= self._options.max_errors

    def add(self, line: int, reason: str, record: dict[str, Any] | None, text: str | None) -> None:
        self._report.rejected += 1
        if not self._options.skip_invalid:
            if len(self._report.errors) < self._options.max_errors:
                self._report.errors.append(RowError(self._source.name, line, reason))
            return
        if self._file is None:
            path = self._report.rejects_path
            assert path is not None
            try:
                self._file = path.open("wb")
            except OSError as exc:
                # Raised inside the import's transaction, so nothing is stored.
                raise ImportFailed(
                    f"{path}: cannot write rejected rows there ({exc.strerror}); nothing was "
                    "imported — choose another place with --rejects"
                ) from exc
        entry = {"line": line, "reason": reason, "record": record, "text": text}
        self._file.write(orjson.dumps(entry, default=str) + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run_import(
    store: Store,
    source: Source,
    kind: str,
    make_sink: Callable[[Connection, ImportReport], Sink[Item]],
    options: ImportOptions,
) -> ImportReport:
    """Import every row of ``source`` through the sink ``make_sink`` builds."""
    report = ImportReport(kind=kind, source=source.name)
    batch_size = options.batch_size or DEFAULT_BATCH_SIZE[store.dialect]
    rejects = _Rejects(report, options, source)
    started = time.perf_counter()
    try:
        with store.begin() as conn:
            sink = make_sink(conn, report)
            try:
                _read_all(source, sink, rejects, report, options, batch_size)
                if report.rejected and not options.skip_invalid:
                    report.seconds = time.perf_counter() - started
                    raise ImportFailed(
                        _failure_message(report, options, source), tuple(report.errors)
                    )
            except BaseException:
                # The original error is what the user needs; a second one from
                # tidying up a connection that is being rolled back would hide it.
                with contextlib.suppress(Exception):
                    sink.abandon()
                raise
            sink.finish()
    finally:
        rejects.close()
    # Measured after the commit: on a big SQLite import the commit itself takes seconds.
    report.seconds = time.perf_counter() - started
    return report


def _read_all(
    source: Source,
    sink: Sink[Item],
    rejects: _Rejects,
    report: ImportReport,
    options: ImportOptions,
    batch_size: int,
) -> None:
    batch = _Batch[Item](sink, rejects, keep_records=options.skip_invalid)
    try:
        for row in read_rows(source, options.on_bytes):
            report.read += 1
            if row.fields is None:
                rejects.add(row.line, row.error or "unreadable", None, row.text)
            else:
                try:
                    batch.add(row, sink.parse(row))
                except ValueError as exc:
                    rejects.add(row.line, str(exc), row.fields, None)
            if len(batch) >= batch_size:
                batch.flush()
            if rejects.full:
                break
        batch.flush()
    finally:
        batch.close()


class _Batch(Generic[Item]):
    """Items waiting to be written, and the batch being written right now.

    Writing runs on one helper thread while the main thread parses the next
    batch: the database works (in its own process for PostgreSQL, without the
    GIL for SQLite) while Python parses, so an import uses both cores. At most
    one batch is in flight and the connection is only ever used by one thread
    at a time.
    """

    def __init__(self, sink: Sink[Item], rejects: _Rejects, keep_records: bool) -> None:
        self._sink = sink
        self._rejects = rejects
        self._items: list[Item] = []
        self._records: dict[int, dict[str, Any]] = {}
        self._keep = keep_records
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="narrowcast-import")
        self._in_flight: Future[list[tuple[int, str]]] | None = None
        self._in_flight_records: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add(self, row: Row, item: Item) -> None:
        self._items.append(item)
        if self._keep and row.fields is not None:
            self._records[row.line] = row.fields

    def flush(self) -> None:
        """Hand the pending items to the writer thread (after the previous batch is done)."""
        self.wait()
        if not self._items:
            return
        self._in_flight = self._writer.submit(self._sink.writer(self._items))
        self._in_flight_records = self._records
        self._items = []
        self._records = {}

    def wait(self) -> None:
        """Finish the batch in flight and collect what the store refused."""
        if self._in_flight is None:
            return
        refused = self._in_flight.result()
        self._in_flight = None
        for line, reason in refused:
            self._rejects.add(line, reason, self._in_flight_records.get(line), None)
        self._in_flight_records = {}

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._writer.shutdown(wait=True)


def _failure_message(report: ImportReport, options: ImportOptions, source: Source) -> str:
    errors = sorted(report.errors, key=lambda e: e.line)
    count = f"{report.rejected} bad rows" if report.rejected > 1 else "1 bad row"
    lines = [f"{source.name}: nothing was imported — {count}:"]
    lines += [f"  {error}" for error in errors]
    if report.rejected >= options.max_errors:
        lines.append(f"  (stopped reading after {options.max_errors} problems)")
    rejects = (
        _default_rejects_path(source) if options.rejects_path is None else options.rejects_path
    )
    lines.append(
        f"Fix these rows and import again, or pass --skip-invalid to store the good rows "
        f"and write the bad ones to {rejects}."
    )
    return "\n".join(lines)


def _default_rejects_path(source: Source) -> Path:
    if source.path is None:
        return Path("stdin.rejects.jsonl")
    return source.path.with_name(source.path.name + ".rejects.jsonl")
