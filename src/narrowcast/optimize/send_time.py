"""``send_time = "auto"``: the local hour to send at, learned per customer by Thompson sampling.

Response per message sent at each local hour is a hierarchical Beta-Binomial:

* **all customers** — a flat prior at the overall response rate, updated with
  everyone's trials by hour;
* **segment** (the campaign's audience) — starts from the all-customer
  estimate, worth ``prior_strength`` messages per hour, updated with its members' trials;
* **customer** — starts from the segment's estimate the same way, updated
  with their own trials, once they have at least ``min_customer_messages``.

Every level lends ``neighbour_weight`` of each hour's evidence to the hours
beside it (response curves are smooth; a customer reached at 19:00 tells
something about 18:00), and results lose half their weight every
``half_life_days``. With no trials at all the configured default hour is used.

The choice is Thompson sampling over the hours the campaign window and quiet
hours allow, mixed with ``exploration`` (uniform over those hours), and the
probability of the chosen hour is logged with the message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narrowcast.optimize.beta import (
    Array,
    Posterior,
    best_probabilities,
    flat,
    pick,
    smooth_circular,
    with_floor,
)
from narrowcast.optimize.trials import Counts, TrialLog
from narrowcast.planning.settings import LearningSettings

PRIOR_RATE = 0.05
"""Response rate assumed before any trial (only its strength matters once data arrives)."""
COLD_DRAWS = 20000
"""Thompson draws behind the probabilities shared by customers without history of their own."""
OWN_DRAWS = 1000


@dataclass(frozen=True)
class Choice:
    """A learned choice, its probability, and why."""

    option: int
    probability: float
    why: str


class HourModel:
    """Send-hour posteriors of one campaign's plan."""

    def __init__(
        self, log: TrialLog, settings: LearningSettings, default_hour: int, seed: int
    ) -> None:
        self.log = log
        self.settings = settings
        self.default_hour = default_hour
        self.seed = seed
        strength = settings.prior_strength
        everyone = self._by_hour(log.everyone)
        total_sends = float(everyone[0].sum())
        self.has_data = total_sends > 0
        rate = float(everyone[1].sum()) / total_sends if self.has_data else PRIOR_RATE
        self.everyone = flat(24, rate, strength).update(*everyone)
        self.segment = self.everyone.as_prior(strength).update(*self._by_hour(log.audience))
        self.segment_sends = log.audience.sends.sum(axis=0)
        self._shared: dict[tuple[int, ...], np.ndarray] = {}

    def _by_hour(self, counts: Counts) -> tuple[Array, Array]:
        """Sends and responses per hour over every channel, lent to neighbouring hours."""
        weight = self.settings.neighbour_weight
        return (
            smooth_circular(counts.sends.sum(axis=0), weight),
            smooth_circular(counts.responses.sum(axis=0), weight),
        )

    def curve(self) -> Array:
        """The segment's posterior mean response per local hour (0–23)."""
        return self.segment.mean

    def own(self, customer_id: str) -> Posterior | None:
        """The customer's own posterior, once they have enough trials to count."""
        counts = self.log.customers.get(customer_id)
        if counts is None:
            return None
        if self.log.messages.get(customer_id, 0) < self.settings.min_customer_messages:
            return None
        return self.segment.as_prior(self.settings.customer_prior_strength).update(
            *self._by_hour(counts)
        )

    def probabilities(self, allowed: tuple[int, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each allowed hour) for this customer, and which level decided."""
        floor = self.settings.exploration
        if not self.has_data:
            target = _first_from(allowed, self.default_hour)
            greedy = np.array([1.0 if h == target else 0.0 for h in allowed])
            return with_floor(greedy, floor), "no results yet: the default hour"
        own = self.own(customer_id)
        if own is None:
            shared = self._shared.get(allowed)
            if shared is None:
                rng = np.random.default_rng([self.seed, len(allowed), *allowed])
                shared = best_probabilities(self.segment.subset(allowed), rng, COLD_DRAWS)
                self._shared[allowed] = shared
            return with_floor(shared, floor), "segment"
        rng = np.random.default_rng([self.seed, *customer_id.encode()])
        return with_floor(best_probabilities(own.subset(allowed), rng, OWN_DRAWS), floor), (
            "customer"
        )

    def choose(self, allowed: tuple[int, ...], customer_id: str, u: float) -> Choice:
        """The hour for this customer with uniform number ``u``, its probability and why."""
        shares, level = self.probabilities(allowed, customer_id)
        index = pick(shares, u)
        hour = allowed[index]
        return Choice(
            hour, float(shares[index]), self._why(hour, shares, allowed, level, customer_id)
        )

    def _why(
        self, hour: int, shares: Array, allowed: tuple[int, ...], level: str, customer_id: str
    ) -> str:
        chance = f"P(chosen) {shares[allowed.index(hour)]:.2f}"
        if level.startswith("no results"):
            return f"{hour:02d}:00 — {level} ({chance}, {self.settings.exploration:.0%} exploring)"
        mean = self.segment.mean
        best = max(allowed, key=lambda h: mean[h])
        text = (
            f"{hour:02d}:00 — Thompson sampling ({chance}); segment response "
            f"{mean[hour]:.2%} at {hour:02d}:00 "
            f"(≈{self.segment_sends[hour]:.0f} weighted sends), best {best:02d}:00 {mean[best]:.2%}"
        )
        messages = self.log.messages.get(customer_id, 0)
        if level == "customer":
            own = self.own(customer_id)
            assert own is not None
            text += f"; own history ({messages} messages) gives {own.mean[hour]:.2%}"
        elif messages:
            text += (
                f"; own history ({messages} messages) not counted below "
                f"{self.settings.min_customer_messages}"
            )
        return text


def _first_from(allowed: tuple[int, ...], hour: int) -> int:
    """``hour`` if allowed, else the next allowed hour after it (wrapping at midnight)."""
    for step in range(24):
        candidate = (hour + step) % 24
        if candidate in allowed:
            return candidate
    return allowed[0]


__all__ = ["COLD_DRAWS", "Choice", "HourModel", "PRIOR_RATE"]
