"""Pausing a channel: nothing of it is claimed, and two pauses at once both succeed.

Two dispatch loops refused by the provider at the same moment both pause the
channel; the second must not fail (its results are recorded in the same
transaction, and a failure there leaves the batch in ``sending``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from narrowcast.dispatch.outbox import Outbox
from narrowcast.store import Store
from narrowcast.store.bulk import insert_columns
from narrowcast.store.schema import channel_pauses, outbox
from tests.dispatch.test_batch_statements import _row, _run

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_a_pause_waits_for_a_concurrent_pause_and_then_wins(store: Store) -> None:
    mine = Outbox(store, "worker-b")
    with ThreadPoolExecutor(1) as pool:
        with store.begin() as conn:  # worker-a's pause, not committed yet
            conn.execute(
                insert(channel_pauses).values(
                    channel="email", reason="401 for a", since=NOW, paused_by="worker-a"
                )
            )
            second = pool.submit(mine.pause, "email", "401 for b", NOW)
            time.sleep(0.3)  # b now waits on a's row (PostgreSQL) or write lock (SQLite)
        second.result(timeout=60)
    assert mine.paused() == {"email": ("401 for b", NOW)}
    assert mine.resume("email") and mine.paused() == {}


def test_a_paused_channel_claims_nothing_until_resumed(store: Store) -> None:
    run = _run(store, 3)
    with store.begin() as conn:
        insert_columns(conn, outbox, [_row(run, i, 1.0) for i in range(3)])
    box = Outbox(store, "worker-a")
    box.pause("email", "401", NOW)
    at = NOW + timedelta(minutes=1)
    assert box.claim("email", 10, at, timedelta(minutes=1)) == []
    assert box.resume("email")
    assert len(box.claim("email", 10, at, timedelta(minutes=1))) == 3
