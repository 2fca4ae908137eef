"""Whose time it is: the database's for a running worker, a fixed instant for ``tick --at``.

Leases and send times are compared across workers on different machines, so a
running worker reads the time from the database (one clock for everyone),
never from its own machine. ``narrowcast tick --at`` and the tests pass a
``FixedClock`` instead, which makes a whole pass reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from narrowcast.store import Store


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class DatabaseClock:
    """The database server's clock (SQLite: the machine it runs on)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def now(self) -> datetime:
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
