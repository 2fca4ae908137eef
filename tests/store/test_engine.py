"""The store's engine: instants in UTC, SQLite tuned for a worker, clear connection errors."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from narrowcast.store import Store, StoreError
from narrowcast.store.schema import consents, customers, events, sqlite_instant

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def _customer(customer_id: str = "c1") -> dict[str, object]:
    return {"id": customer_id, "created_at": NOW, "updated_at": NOW, "attributes": {}}


def test_instants_round_trip_as_the_same_utc_instant(store: Store) -> None:
    madrid_summer = timezone(timedelta(hours=2))
    local = datetime(2026, 7, 1, 21, 0, tzinfo=madrid_summer)
    with store.begin() as conn:
        conn.execute(insert(customers).values(_customer()))
        conn.execute(
            insert(events).values(customer_id="c1", type="order", ts=local, properties={"a": 1})
        )
    with store.connect() as conn:
        stored = conn.execute(select(events.c.ts)).scalar_one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)
    assert stored.hour == 19


def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.begin() as conn:
        conn.execute(insert(customers).values(_customer() | {"created_at": datetime(2026, 1, 1)}))


def test_sqlite_text_matches_what_the_type_writes(sqlite_store: Store) -> None:
    with sqlite_store.begin() as conn:
        conn.execute(insert(customers).values(_customer()))
        raw = conn.exec_driver_sql("SELECT created_at FROM customers").scalar_one()
    assert raw == sqlite_instant(NOW)


def test_sqlite_is_configured_for_concurrent_workers(sqlite_store: Store) -> None:
    with sqlite_store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000


def test_sqlite_writers_wait_for_each_other_instead_of_failing(sqlite_store: Store) -> None:
    """BEGIN IMMEDIATE: the second writer blocks on the lock, then succeeds."""
    first_has_lock = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with sqlite_store.begin() as conn:
            conn.execute(insert(customers).values(_customer("a")))
            first_has_lock.set()
            time.sleep(0.5)

    def second() -> None:
        first_has_lock.wait()
        try:
            with sqlite_store.begin() as conn:
                count = conn.execute(select(func.count()).select_from(customers)).scalar_one()
                conn.execute(insert(customers).values(_customer(f"b{count}")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite_store.connect() as conn:
        ids = set(conn.execute(select(customers.c.id)).scalars())
    # The second writer read after the first committed, so it saw one customer.
    assert ids == {"a", "b1"}


def test_deleting_a_customer_removes_their_events_and_consent(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(insert(customers).values(_customer()))
        conn.execute(insert(events).values(customer_id="c1", type="x", ts=NOW, properties={}))
        conn.execute(
            insert(consents).values(
                customer_id="c1",
                channel="email",
                purpose="marketing",
                granted=True,
                source="test",
                updated_at=NOW,
            )
        )
        conn.execute(delete(customers).where(customers.c.id == "c1"))
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(consents)).scalar_one() == 0


def test_an_event_for_an_unknown_customer_is_refused(store: Store) -> None:
    with pytest.raises(IntegrityError), store.begin() as conn:
        conn.execute(insert(events).values(customer_id="nobody", type="x", ts=NOW, properties={}))


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.begin() as conn:
        conn.execute(insert(customers).values(_customer()))
        raise RuntimeError("boom")
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/x", "narrowcast runs on SQLite"),
        ("not a url", "not a valid URL"),
    ],
)
def test_unsupported_urls_are_explained(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=expected):
        Store(url)


def test_an_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot open the database"):
        store.upgrade()
    sqlite = Store(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StoreError, match="cannot open the database"):
        sqlite.upgrade()
