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

from narrowcast.optimize.beta import unit
from narrowcast.planning.settings import ControlSettings


def period(now: datetime, settings: ControlSettings) -> int:
    """The reshuffle period ``now`` falls in, counted from 1970-01-01."""
    return int(now.timestamp() // (86400 * settings.reshuffle_days))


def in_control(customer_id: str, now: datetime, settings: ControlSettings) -> bool:
    """Whether the customer is in the global control group as of ``now``."""
    if settings.share <= 0:
        return False
    return unit(settings.salt, str(period(now, settings)), customer_id) < settings.share


__all__ = ["in_control", "period"]
