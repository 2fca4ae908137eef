"""A big import sets the events indexes aside and rebuilds them — all or nothing.

``EventWriter(rebuild_indexes_above=…)`` drops the secondary indexes of
``events`` (and on PostgreSQL its foreign key to customers) inside the import's
transaction and re-creates them before the commit. Whatever happens in between
— a bad row, an exception, SIGKILL — the store must come back with exactly the
indexes and constraints it had, and without a single new event.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from narrowcast.ingest import ImportFailed, ImportOptions, import_events, open_source
from narrowcast.store import Store
from narrowcast.store.bulk import REBUILD_MIN_ROWS, EventWriter, StagedEvent, instant_encoder
from tests.ingest.store_contents import add_customers, row_counts
from tests.ingest.test_import_crash import read_position, writing_transactions

CUSTOMERS = 1_000
NARROWCAST = Path(sys.executable).with_name("narrowcast")


def structure(conn: Connection) -> set[str]:
    """The indexes and constraints of ``events``, as the database would re-create them."""
    if conn.dialect.name == "sqlite":
        indexes = {
            f"{name}: {sql}"
            for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            )
        }
        keys = {repr(tuple(row)) for row in conn.exec_driver_sql("PRAGMA foreign_key_list(events)")}
        return indexes | keys
    indexes = set(
        conn.exec_driver_sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'events'").scalars()
    )
    constraints = {
        f"{name}: {definition}"
        for name, definition in conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'events'::regclass"
        )
    }
    return indexes | constraints


def secondary(found: set[str]) -> set[str]:
    return {entry for entry in found if "ix_events_" in entry or "FOREIGN KEY" in entry}


def staged(conn: Connection, count: int, start: int = 0) -> list[StagedEvent]:
    ts = instant_encoder(conn.dialect.name)(datetime(2025, 3, 1, 10, tzinfo=UTC))
    return [
        (n + 1, f"e{n}", f"c{n % CUSTOMERS}", "page_view", ts, None, "{}")
        for n in range(start, start + count)
    ]


@pytest.fixture
def customers_in(store: Store) -> Store:
    add_customers(store, [f"c{n}" for n in range(CUSTOMERS)])
    return store


def test_a_big_import_drops_and_rebuilds_the_indexes_exactly(customers_in: Store) -> None:
    store = customers_in
    with store.connect() as conn:
        before = structure(conn)
    assert len(secondary(before)) >= 2

    with store.begin() as conn:
        writer = EventWriter(conn, rebuild_indexes_above=0.25)
        result = writer.write(staged(conn, REBUILD_MIN_ROWS))
        during = structure(conn)
        writer.close()
        rebuilt = structure(conn)

    assert result.inserted == REBUILD_MIN_ROWS
    assert secondary(during) == set(), "an import into an empty table sets the indexes aside"
    assert during == before - secondary(before)
    assert rebuilt == before
    with store.connect() as conn:
        assert structure(conn) == before
    assert row_counts(store)["events"] == REBUILD_MIN_ROWS

    # The foreign key is back and enforced.
    with pytest.raises(IntegrityError), store.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (customer_id, type, ts, properties) "
            "VALUES ('nobody', 'order', '2025-03-01 10:00:00', '{}')"
        )

    # Against a table that already holds as many events, the same import is
    # small relative to it: the indexes stay unless the fraction says otherwise.
    for above, dropped in ((1.5, False), (0.5, True)):
        with store.begin() as conn:
            writer = EventWriter(conn, rebuild_indexes_above=above)
            writer.write(staged(conn, REBUILD_MIN_ROWS, start=REBUILD_MIN_ROWS))
            assert (secondary(structure(conn)) == set()) is dropped, above
            writer.close()
            assert structure(conn) == before
            conn.rollback()


def test_a_small_import_never_touches_the_indexes(customers_in: Store) -> None:
    with customers_in.begin() as conn:
        before = structure(conn)
        writer = EventWriter(conn, rebuild_indexes_above=0.0)
        writer.write(staged(conn, REBUILD_MIN_ROWS - 1))
        assert structure(conn) == before


def big_file(path: Path, count: int, bad_last: bool = False) -> Path:
    with path.open("wb") as out:
        for n in range(count):
            event = {
                "event_id": f"e{n}",
                "customer_id": f"c{n % CUSTOMERS}",
                "type": "order" if n % 5 == 0 else "page_view",
                "ts": "2025-03-01T10:00:00+01:00",
                "value": n % 50,
            }
            out.write(orjson.dumps(event) + b"\n")
        if bad_last:
            out.write(b'{"customer_id": "c1", "type": "order", "ts": "yesterday"}\n')
    return path


def test_a_failed_big_import_leaves_the_indexes_and_no_events(
    customers_in: Store, tmp_path: Path
) -> None:
    store = customers_in
    # The bad row comes after every good batch is written, with the indexes dropped.
    path = big_file(tmp_path / "events.jsonl", REBUILD_MIN_ROWS + 20_000, bad_last=True)
    with store.connect() as conn:
        before = structure(conn)
    counts = row_counts(store)

    with pytest.raises(ImportFailed, match="yesterday"):
        import_events(store, open_source(path), ImportOptions(rebuild_indexes_above=0.25))

    with store.connect() as conn:
        assert structure(conn) == before
    assert row_counts(store) == counts


@pytest.mark.skipif(
    not Path("/proc/self/fdinfo").is_dir(), reason="watches the child's read position in /proc"
)
def test_a_big_import_killed_with_its_indexes_dropped_leaves_them_in_place(
    customers_in: Store, tmp_path: Path
) -> None:
    store = customers_in
    events = 2 * REBUILD_MIN_ROWS
    path = big_file(tmp_path / "events.jsonl", events)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{store.url.render_as_string(False)}"\n')
    command = [str(NARROWCAST), "--config", str(config), "import", "events", str(path)]
    with store.connect() as conn:
        before = structure(conn)
    counts = row_counts(store)
    size = path.stat().st_size

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Past three quarters of the file at least two batches beyond the first
        # 100,000 rows have been written, so the indexes are gone inside its
        # transaction; on PostgreSQL its lock on events says so directly.
        deadline = time.monotonic() + 120
        position = None
        while time.monotonic() < deadline and child.poll() is None:
            position = read_position(child.pid, path)
            if position is not None and position > size * 0.75 and dropped_by_other(store):
                break
            time.sleep(0.01)
        writing = writing_transactions(store)
        still_running = child.poll() is None
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        out, err = child.communicate(timeout=30)

    assert still_running, f"the import ended before it could be killed: {out!r} {err!r}"
    assert writing == 1
    assert child.returncode == -signal.SIGKILL

    with store.connect() as conn:
        assert structure(conn) == before
        if store.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
    assert row_counts(store) == counts


def dropped_by_other(store: Store) -> bool:
    """On PostgreSQL: another session holds ACCESS EXCLUSIVE on events (it dropped an index)."""
    if store.dialect == "sqlite":
        return True  # not visible from outside; the read position has to do
    with store.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass "
                "AND mode = 'AccessExclusiveLock' AND granted AND pid <> pg_backend_pid()"
            ).scalar_one()
        )


@pytest.mark.postgres
def test_an_event_id_stored_concurrently_is_skipped_not_an_error(postgres_store: Store) -> None:
    """Another transaction storing the same event_id while the import runs: the import
    waits for it, then counts its copy as a duplicate instead of failing."""
    store = postgres_store
    add_customers(store, ["c0", "c1"])
    other = store.engine.connect()
    try:
        other.begin()
        other.exec_driver_sql(
            "INSERT INTO events (event_id, customer_id, type, ts, properties) "
            "VALUES ('e0', 'c0', 'order', '2025-03-01 10:00:00+00', '{}')"
        )
        outcome: list[Any] = []

        def importer() -> None:
            with store.begin() as conn:
                writer = EventWriter(conn)
                outcome.append(writer.write(staged(conn, 2)))  # e0 and e1
                writer.close()

        thread = threading.Thread(target=importer)
        thread.start()
        # The importer's INSERT waits on the other transaction's e0 …
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not waiting_for_a_lock(store):
            time.sleep(0.02)
        other.commit()  # … which then wins.
        thread.join(timeout=30)
    finally:
        other.close()

    assert len(outcome) == 1
    assert (outcome[0].inserted, outcome[0].duplicates) == (1, 1)
    assert row_counts(store)["events"] == 2


def waiting_for_a_lock(store: Store) -> bool:
    with store.connect() as conn:
        return bool(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).scalar_one()
        )
