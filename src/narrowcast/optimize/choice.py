"""What the send-time and channel models share: three levels and a Thompson choice.

A model has evidence per option for everyone, for the segment (the campaign's
audience) and per customer. Its posteriors stack: everyone's starts from a flat
prior at the overall rate, the segment's from everyone's, a customer's from the
segment's (once they have ``min_customer_messages`` trials). A subclass says how
the log's counts become per-option evidence (``_evidence``, ``_own_evidence``).

The probability of choosing each option is the probability that its draw is the
best (Thompson sampling), mixed with a floor of uniform exploration. It is
shared by every customer without enough history of their own, and drawn in one
batch for all those with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narrowcast.optimize.beta import (
    Array,
    Posterior,
    best_probabilities,
    best_probabilities_each,
    flat,
    pick_cumulative,
    with_floor,
)
from narrowcast.optimize.trials import Counts, TrialLog
from narrowcast.planning.settings import LearningSettings

PRIOR_RATE = 0.05
"""Response rate assumed before any trial (only its strength matters once data arrives)."""
COLD_DRAWS = 20000
"""Thompson draws behind the probabilities shared by customers without history of their own."""
OWN_DRAWS = 400
"""Thompson draws per customer whose own results count (drawn for all of them at once)."""


@dataclass(frozen=True)
class Choice:
    """A learned choice, its probability, and why."""

    option: int
    probability: float
    why: str


class LearnedChoice:
    """Posteriors at three levels over a model's options, and Thompson probabilities."""

    def __init__(self, log: TrialLog, settings: LearningSettings, seed: int, floor: float) -> None:
        self.log = log
        self.settings = settings
        self.seed = seed
        self.floor = floor
        strength = settings.prior_strength
        sends, responses = self._evidence(log.everyone)
        total = float(sends.sum())
        self.has_data = total > 0
        rate = float(responses.sum()) / total if self.has_data else PRIOR_RATE
        self.everyone = flat(len(sends), rate, strength).update(sends, responses)
        self.segment = self.everyone.as_prior(strength).update(*self._evidence(log.audience))
        self.cost: Array | None = None
        self._shared: dict[tuple[int, ...], Array] = {}
        """The floored shares of customers without enough history, by option set."""
        self._own: dict[tuple[int, ...], dict[str, Array]] = {}
        """The floored shares of each customer whose own results count, by option set."""
        self._sums: dict[int, list[float]] = {}
        """Cumulative shares of the arrays above, by ``id`` (they live as long as the model)."""

    def _evidence(self, counts: Counts) -> tuple[Array, Array]:
        """Sends and responses per option from (channel × hour) counts."""
        raise NotImplementedError

    def _own_evidence(self, rows: list[int]) -> tuple[Array, Array]:
        """Sends and responses per option of these members of the log (one row each)."""
        raise NotImplementedError

    def own(self, customer_id: str) -> Posterior | None:
        """The customer's own posterior, once they have enough trials to count."""
        if self.log.messages_of(customer_id) < self.settings.min_customer_messages:
            return None
        return self._own_posterior([self.log.rows[customer_id]])

    def _own_posterior(self, rows: list[int]) -> Posterior:
        prior = self.segment.as_prior(self.settings.customer_prior_strength)
        return prior.update(*self._own_evidence(rows))

    def shares(self, options: tuple[int, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each of ``options``) for this customer, and the level that decided."""
        own = self._own_shares(options).get(customer_id)
        if own is not None:
            return own, "customer"
        shared = self._shared.get(options)
        if shared is None:  # once per option set: most customers share it
            rng = np.random.default_rng([self.seed, len(options), *options])
            chances = best_probabilities(
                self.segment.subset(options), rng, COLD_DRAWS, self._cost(options)
            )
            shared = self._shared[options] = with_floor(chances, self.floor)
        return shared, "segment"

    def pick(self, shares: Array, u: float) -> int:
        """The option ``u`` falls on, for shares this model handed out (summed once each)."""
        sums = self._sums.get(id(shares))
        if sums is None:
            sums = self._sums[id(shares)] = np.cumsum(shares).tolist()
        return pick_cumulative(sums, u)

    def _cost(self, options: tuple[int, ...]) -> Array | None:
        return None if self.cost is None else self.cost[list(options)]

    def _own_shares(self, options: tuple[int, ...]) -> dict[str, Array]:
        """P(best) of every member whose own results count, drawn for all at once."""
        found = self._own.get(options)
        if found is None:
            ids = self.log.experienced(self.settings.min_customer_messages)
            found = {}
            if ids:
                posterior = self._own_posterior([self.log.rows[i] for i in ids])
                columns = list(options)
                rng = np.random.default_rng([self.seed, 1, len(options), *options])
                shares = best_probabilities_each(
                    posterior.alpha[:, columns],
                    posterior.beta[:, columns],
                    rng,
                    OWN_DRAWS,
                    self._cost(options),
                )
                floored = (1.0 - self.floor) * shares + self.floor / len(options)
                found = dict(zip(ids, floored, strict=True))
            self._own[options] = found
        return found


__all__ = ["COLD_DRAWS", "OWN_DRAWS", "PRIOR_RATE", "Choice", "LearnedChoice"]
