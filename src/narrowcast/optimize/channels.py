"""``channel = "auto"``: the channel to send on, learned per customer by Thompson sampling.

Response per message on each channel is Beta-Bernoulli per (customer,
channel), with the segment's estimate as the prior and everyone's below that
(the same three levels as the send time, pooled over hours). A customer's own
results count once they have had ``min_customer_messages`` messages. Each
channel's draw is reduced by its cost from ``[planning.learning] channel_cost``
(in units of one response), so a dearer channel must earn its price.

The choice is among the channels the customer can be reached on and has
consented to — never a channel they cannot get, so nobody is dropped because
the best channel is out of reach: the next one is chosen. Without any
results, ``channel_order`` decides, with ``channel_exploration`` spread
uniformly so the first results arrive for every channel.
"""

from __future__ import annotations

import numpy as np

from narrowcast.optimize.beta import (
    Array,
    Posterior,
    best_probabilities,
    best_probabilities_each,
    flat,
    pick,
    with_floor,
)
from narrowcast.optimize.send_time import COLD_DRAWS, OWN_DRAWS, PRIOR_RATE, Choice
from narrowcast.optimize.trials import TrialLog
from narrowcast.planning.settings import LearningSettings


class ChannelModel:
    """Channel posteriors of one campaign's plan."""

    def __init__(self, log: TrialLog, settings: LearningSettings, seed: int) -> None:
        self.log = log
        self.settings = settings
        self.seed = seed
        strength = settings.prior_strength
        sends = log.everyone.sends.sum(axis=1)
        responses = log.everyone.responses.sum(axis=1)
        total = float(sends.sum())
        self.has_data = total > 0
        rate = float(responses.sum()) / total if self.has_data else PRIOR_RATE
        size = len(log.channels)
        self.everyone = flat(size, rate, strength).update(sends, responses)
        self.segment = self.everyone.as_prior(strength).update(
            log.audience.sends.sum(axis=1), log.audience.responses.sum(axis=1)
        )
        self.segment_sends = log.audience.sends.sum(axis=1)
        self.cost = np.array([settings.channel_cost.get(ch, 0.0) for ch in log.channels])
        self._shared: dict[tuple[int, ...], Array] = {}
        self._own: dict[tuple[int, ...], dict[str, Array]] = {}

    def own(self, customer_id: str) -> Posterior | None:
        if self.log.messages_of(customer_id) < self.settings.min_customer_messages:
            return None
        return self._own_posterior([self.log.rows[customer_id]])

    def _own_posterior(self, rows: list[int]) -> Posterior:
        prior = self.segment.as_prior(self.settings.customer_prior_strength)
        return prior.update(self.log.channel_sends[rows], self.log.channel_responses[rows])

    def probabilities(self, usable: tuple[str, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each usable channel) for this customer, and which level decided."""
        floor = self.settings.channel_exploration
        index = tuple(self.log.channels.index(ch) for ch in usable)
        if not self.has_data:
            greedy = np.zeros(len(usable))
            greedy[0] = 1.0  # ``usable`` keeps channel_order
            return with_floor(greedy, floor), "no results yet: channel_order"
        own = self._own_shares(index).get(customer_id)
        if own is not None:
            return with_floor(own, floor), "customer"
        shared = self._shared.get(index)
        if shared is None:
            rng = np.random.default_rng([self.seed, len(index), *index])
            cost = self.cost[list(index)]
            shared = best_probabilities(self.segment.subset(index), rng, COLD_DRAWS, cost)
            self._shared[index] = shared
        return with_floor(shared, floor), "segment"

    def _own_shares(self, index: tuple[int, ...]) -> dict[str, Array]:
        """P(best channel) of every member whose own results count, drawn for all at once."""
        found = self._own.get(index)
        if found is None:
            ids = self.log.experienced(self.settings.min_customer_messages)
            found = {}
            if ids:
                posterior = self._own_posterior([self.log.rows[i] for i in ids])
                columns = list(index)
                rng = np.random.default_rng([self.seed, 1, len(index), *index])
                shares = best_probabilities_each(
                    posterior.alpha[:, columns],
                    posterior.beta[:, columns],
                    rng,
                    OWN_DRAWS,
                    self.cost[columns],
                )
                found = dict(zip(ids, shares, strict=True))
            self._own[index] = found
        return found

    def choose(self, usable: tuple[str, ...], customer_id: str, u: float) -> tuple[str, Choice]:
        shares, level = self.probabilities(usable, customer_id)
        index = pick(shares, u)
        channel = usable[index]
        return channel, Choice(index, float(shares[index]), self._why(usable, shares, level))

    def _why(self, usable: tuple[str, ...], shares: Array, level: str) -> str:
        if level.startswith("no results"):
            return f"{level}; usable: {', '.join(usable)}"
        mean = self.segment.mean
        parts = []
        for ch, share in zip(usable, shares, strict=True):
            i = self.log.channels.index(ch)
            cost = f", cost {self.cost[i]:g}" if self.cost[i] else ""
            parts.append(
                f"{ch} {mean[i]:.2%} (≈{self.segment_sends[i]:.0f} sends{cost}; P {share:.2f})"
            )
        return f"Thompson sampling on the {level}'s response; " + "; ".join(parts)


__all__ = ["ChannelModel"]
