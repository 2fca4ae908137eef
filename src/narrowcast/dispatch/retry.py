"""When to try a transiently failed message again, and when to give up.

Exponential backoff with jitter: the n-th retry waits ``backoff · 2^(n−1)``
(at most an hour), times a random factor in [0.75, 1.25] so that a provider
outage does not come back as a thundering herd; a ``Retry-After`` the
provider gave is a floor. A message is given up (``failed``) when it has used
``max_attempts``, when it is older than ``max_age``, or when the retry would
fall after its own deadline (``expires_at``) — a message is never sent late.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from narrowcast.dispatch.settings import DispatchSettings
from narrowcast.segments.language import parse_duration

_CEILING = timedelta(hours=1)


def next_attempt(
    settings: DispatchSettings,
    attempts: int,
    now: datetime,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When attempt ``attempts + 1`` may run."""
    base = parse_duration(settings.backoff)
    delay: timedelta = min(base * 2 ** max(attempts - 1, 0), _CEILING)
    delay = delay * float((rng or random).uniform(0.75, 1.25))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return now + delay


def give_up(
    settings: DispatchSettings,
    attempts: int,
    created_at: datetime,
    expires_at: datetime,
    retry_at: datetime,
) -> str | None:
    """Why the message should not be retried, or None."""
    if attempts >= settings.max_attempts:
        return f"gave up after {attempts} attempts"
    if retry_at - created_at > parse_duration(settings.max_age):
        return f"gave up: older than {settings.max_age}"
    if retry_at > expires_at:
        return "gave up: the next attempt would fall after the message's deadline"
    return None
