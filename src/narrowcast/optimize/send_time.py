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

import numpy as np

from narrowcast.optimize.beta import Array, smooth_circular, with_floor
from narrowcast.optimize.choice import Choice, LearnedChoice
from narrowcast.optimize.trials import Counts, TrialLog
from narrowcast.planning.settings import LearningSettings


class HourModel(LearnedChoice):
    """Send-hour posteriors of one campaign's plan: 24 options, pooled over channels."""

    def __init__(
        self, log: TrialLog, settings: LearningSettings, default_hour: int, seed: int
    ) -> None:
        super().__init__(log, settings, seed, settings.exploration)
        self.default_hour = default_hour
        self.segment_sends = log.audience.sends.sum(axis=0)

    def _evidence(self, counts: Counts) -> tuple[Array, Array]:
        """Sends and responses per hour over every channel, lent to neighbouring hours."""
        weight = self.settings.neighbour_weight
        return (
            smooth_circular(counts.sends.sum(axis=0), weight),
            smooth_circular(counts.responses.sum(axis=0), weight),
        )

    def _own_evidence(self, rows: list[int]) -> tuple[Array, Array]:
        weight = self.settings.neighbour_weight
        return (
            smooth_circular(self.log.hour_sends[rows], weight),
            smooth_circular(self.log.hour_responses[rows], weight),
        )

    def curve(self) -> Array:
        """The segment's posterior mean response per local hour (0–23)."""
        return self.segment.mean

    def probabilities(self, allowed: tuple[int, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each allowed hour) for this customer, and which level decided."""
        if not self.has_data:
            shares = self._shared.get(allowed)
            if shares is None:
                target = _first_from(allowed, self.default_hour)
                greedy = np.array([1.0 if h == target else 0.0 for h in allowed])
                shares = self._shared[allowed] = with_floor(greedy, self.floor)
            return shares, "no results yet: the default hour"
        return self.shares(allowed, customer_id)

    def choose(
        self, allowed: tuple[int, ...], customer_id: str, u: float, explain: bool = False
    ) -> Choice:
        """The hour for this customer with uniform number ``u``, its probability, and
        (``explain``) why."""
        shares, level = self.probabilities(allowed, customer_id)
        index = self.pick(shares, u)
        hour = allowed[index]
        why = self._why(hour, shares, allowed, level, customer_id) if explain else ""
        return Choice(hour, float(shares[index]), why)

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
        messages = self.log.messages_of(customer_id)
        if level == "customer":
            own = self.own(customer_id)
            assert own is not None
            text += f"; own history ({messages} messages) gives {own.mean[0, hour]:.2%}"
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


__all__ = ["HourModel"]
