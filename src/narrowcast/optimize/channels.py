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

from narrowcast.optimize.beta import Array, with_floor
from narrowcast.optimize.choice import Choice, LearnedChoice
from narrowcast.optimize.trials import Counts, TrialLog
from narrowcast.planning.settings import LearningSettings


class ChannelModel(LearnedChoice):
    """Channel posteriors of one campaign's plan: one option per channel, pooled over hours."""

    def __init__(self, log: TrialLog, settings: LearningSettings, seed: int) -> None:
        super().__init__(log, settings, seed, settings.channel_exploration)
        self.segment_sends = log.audience.sends.sum(axis=1)
        self.cost = np.array([settings.channel_cost.get(ch, 0.0) for ch in log.channels])
        self._options: dict[tuple[str, ...], tuple[int, ...]] = {}

    def _evidence(self, counts: Counts) -> tuple[Array, Array]:
        return counts.sends.sum(axis=1), counts.responses.sum(axis=1)

    def _own_evidence(self, rows: list[int]) -> tuple[Array, Array]:
        return self.log.channel_sends[rows], self.log.channel_responses[rows]

    def probabilities(self, usable: tuple[str, ...], customer_id: str) -> tuple[Array, str]:
        """P(choose each usable channel) for this customer, and which level decided."""
        options = self._options.get(usable)
        if options is None:
            options = self._options[usable] = tuple(self.log.channels.index(ch) for ch in usable)
        if not self.has_data:
            shares = self._shared.get(options)
            if shares is None:
                greedy = np.zeros(len(usable))
                greedy[0] = 1.0  # ``usable`` keeps channel_order
                shares = self._shared[options] = with_floor(greedy, self.floor)
            return shares, "no results yet: channel_order"
        return self.shares(options, customer_id)

    def choose(
        self, usable: tuple[str, ...], customer_id: str, u: float, explain: bool = False
    ) -> tuple[str, Choice]:
        shares, level = self.probabilities(usable, customer_id)
        index = self.pick(shares, u)
        why = self._why(usable, shares, level) if explain else ""
        return usable[index], Choice(index, float(shares[index]), why)

    def _why(self, usable: tuple[str, ...], shares: Array, level: str) -> str:
        if level.startswith("no results"):
            return f"{level}; usable: {', '.join(usable)}"
        mean = self.segment.mean
        costs = self._cost(tuple(range(len(self.log.channels))))
        assert costs is not None
        parts = []
        for ch, share in zip(usable, shares, strict=True):
            i = self.log.channels.index(ch)
            cost = f", cost {costs[i]:g}" if costs[i] else ""
            parts.append(
                f"{ch} {mean[i]:.2%} (≈{self.segment_sends[i]:.0f} sends{cost}; P {share:.2f})"
            )
        return f"Thompson sampling on the {level}'s response; " + "; ".join(parts)


__all__ = ["ChannelModel"]
