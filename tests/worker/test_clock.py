"""The worker's clock is the database's, read once every few seconds and carried forward."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from narrowcast.dispatch.clock import DatabaseClock
from narrowcast.store import Store


def test_the_database_clock_is_read_once_per_resync_and_moves_on(store: Store) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        clock = DatabaseClock(store, resync=0.3)
        first = clock.now()
        reads = len(statements)
        assert reads >= 1 and first.tzinfo is not None
        assert abs(first - datetime.now(UTC)) < timedelta(seconds=5), "the server's time"
        later = [clock.now() for _ in range(200)]
        assert len(statements) == reads, "no round trip between resyncs"
        assert later == sorted(later) and later[-1] >= first, "it moves forward"
        time.sleep(0.35)
        after = clock.now()
        assert len(statements) > reads, "read again after resync seconds"
        assert after - first >= timedelta(seconds=0.3)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
