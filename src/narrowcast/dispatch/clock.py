"""Whose time it is: the database's for a running worker, a fixed instant for ``tick --at``.

Leases and send times are compared across workers on different machines, so a
running worker reads the time from the database (one clock for everyone),
never from its own machine. ``narrowcast tick --at`` and the tests pass a
``FixedClock`` instead, which makes a whole pass reproducible.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from narrowcast.store import Store


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class DatabaseClock:
    """The database server's clock (SQLite: the machine it runs on).

    Read from the server at most every ``resync`` seconds and carried forward in
    between with this process's monotonic clock: the dispatch loop asks for the
    time several times per batch, and a round trip each time was a measurable
    share of a PostgreSQL worker's time. Over a few seconds the two clocks agree to
    microseconds; leases are minutes long.
    """

    def __init__(self, store: Store, resync: float = 5.0) -> None:
        self.store = store
        self.resync = resync
        self._anchor: tuple[datetime, float] | None = None

    def now(self) -> datetime:
        moment = time.monotonic()
        anchor = self._anchor  # one read: other threads may replace it meanwhile
        if anchor is None or moment - anchor[1] >= self.resync:
            anchor = self._anchor = (self._read(), time.monotonic())
        return anchor[0] + timedelta(seconds=time.monotonic() - anchor[1])

    def _read(self) -> datetime:
        with self.store.connect() as conn:
            if conn.dialect.name == "postgresql":
                value = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
                assert isinstance(value, datetime)
                return value.astimezone(UTC)
            text = conn.exec_driver_sql("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").scalar_one()
        return datetime.fromisoformat(str(text)).replace(tzinfo=UTC)


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta
