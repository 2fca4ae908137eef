"""The global control group: customers who get no marketing message at all.

A campaign's holdout measures that campaign; the global control group
measures marketing as a whole (are all these messages worth it?). Membership
is a stable hash of the customer id and the current period, so a customer
stays in (or out) for ``reshuffle_days`` at a time and the group changes no
more often than that. Transactional messages (receipts, password resets) are
never held back.
"""

from __future__ import annotations

from datetime import datetime

from narrowcast.optimize.beta import prefix, unit_of
from narrowcast.planning.settings import ControlSettings


def period(now: datetime, settings: ControlSettings) -> int:
    """The reshuffle period ``now`` falls in, counted from 1970-01-01."""
    return int(now.timestamp() // (86400 * settings.reshuffle_days))


class ControlGroup:
    """The global control group as of one instant (its period's hash prefix, once)."""

    __slots__ = ("share", "_prefix")

    def __init__(self, settings: ControlSettings, now: datetime) -> None:
        self.share = settings.share
        self._prefix = prefix(settings.salt, str(period(now, settings)))

    def holds(self, customer_id: str) -> bool:
        return self.share > 0 and unit_of(self._prefix, customer_id) < self.share


__all__ = ["ControlGroup", "period"]
