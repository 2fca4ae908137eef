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

from narrowcast.optimize.beta import Array, Posterior, best_probabilities, flat, pick, with_floor
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

    def own(self, customer_id: str) -> Posterior | None:
        counts = self.log.customers.get(customer_id)
        if counts is None:
            return None
        if self.log.messages.get(customer_id, 0) < self.settings.min_customer_messages:
            return None
        return self.segment.as_prior(self.settings.customer_prior_strength).update(
            counts.sends.sum(axis=1), counts.responses.sum(axis=1)
        )

    def probabilities(self, usable: tuple[str, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each usable channel) for this customer, and which level decided."""
        floor = self.settings.channel_exploration
        index = tuple(self.log.channels.index(ch) for ch in usable)
        if not self.has_data:
            greedy = np.zeros(len(usable))
            greedy[0] = 1.0  # ``usable`` keeps channel_order
            return with_floor(greedy, floor), "no results yet: channel_order"
        cost = self.cost[list(index)]
        own = self.own(customer_id)
        if own is None:
            shared = self._shared.get(index)
            if shared is None:
                rng = np.random.default_rng([self.seed, len(index), *index])
                shared = best_probabilities(self.segment.subset(index), rng, COLD_DRAWS, cost)
                self._shared[index] = shared
            return with_floor(shared, floor), "segment"
        rng = np.random.default_rng([self.seed, *customer_id.encode()])
        chance = best_probabilities(own.subset(index), rng, OWN_DRAWS, cost)
        return with_floor(chance, floor), "customer"

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
