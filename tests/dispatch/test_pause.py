"""Pausing a channel while another loop or worker pauses it too.

Two dispatch loops refused by the provider at the same moment both pause the
channel; the second must not fail (its results are recorded in the same
transaction, and a failure there leaves the batch in ``sending``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import insert

from narrowcast.dispatch.outbox import Outbox
from narrowcast.store import Store
from narrowcast.store.schema import channel_pauses

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
