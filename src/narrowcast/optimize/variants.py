"""A/B variants that learn: batched Thompson sampling on the goal, and when to stop.

Each plan of a campaign is one batch. Every variant (arm) has a Beta(1 + conversions,
1 + non-conversions) posterior over its conversion rate, counting only messages
whose attribution window has closed — a message sent an hour ago has not had
its chance to convert, and counting it as a failure would punish the arm that
was sent most recently. The batch is split in proportion to each arm's
probability of being the best (batched Thompson sampling); the holdout share
stays fixed and outside the test.

The test stops when it is ``confidence`` sure that continuing could not
improve conversion by more than ``min_lift`` relative to the leader (the
"value remaining" rule), and every arm has had ``min_variant_sends`` closed
sends. From then on the winner gets everyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, and_, func, literal, select

from narrowcast.campaigns.model import Campaign
from narrowcast.optimize.trials import reached
from narrowcast.planning.settings import LearningSettings
from narrowcast.segments.language import parse_duration
from narrowcast.store.schema import Instant, outbox

DRAWS = 20000
RULED_OUT = 0.001
"""An arm whose chance of being the best is below this needs no minimum of sends."""


@dataclass(frozen=True)
class Arm:
    name: str
    sends: int
    """Messages sent whose attribution window has closed."""
    conversions: int

    @property
    def rate(self) -> float:
        return self.conversions / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class Allocation:
    """How the next batch is split, and where the test stands."""

    arms: tuple[Arm, ...]
    weights: dict[str, float]
    best: dict[str, float] = field(default_factory=dict)
    """P(arm is the best), from the posteriors."""
    leader: str | None = None
    value_remaining: float | None = None
    """The ``confidence`` quantile of the relative lift still possible over the leader."""
    winner: str | None = None
    reason: str = ""

    @property
    def adaptive(self) -> bool:
        return len(self.arms) > 1


def allocate(
    arms: Sequence[Arm],
    settings: LearningSettings,
    seed: int = 0,
    declared: str | None = None,
) -> Allocation:
    """The split of the next batch between ``arms``, and whether there is a winner.

    ``declared``: the winner an earlier batch declared (``declared_winner``). A stopped
    test stays stopped — re-deciding at every batch from the winner's growing results
    alone would reopen it on noise — unless an arm without any results has been added.
    """
    if len(arms) < 2:
        weights = {arm.name: 1.0 for arm in arms}
        return Allocation(tuple(arms), weights, weights, arms[0].name if arms else None)
    rng = np.random.default_rng(seed)
    conversions = np.array([a.conversions for a in arms], dtype=np.float64)
    sends = np.array([a.sends for a in arms], dtype=np.float64)
    draws = rng.beta(1.0 + conversions, 1.0 + sends - conversions, size=(DRAWS, len(arms)))
    best = np.bincount(np.argmax(draws, axis=1), minlength=len(arms)) / DRAWS
    lead = int(np.argmax(best))
    leader = arms[lead].name
    remaining = (draws.max(axis=1) - draws[:, lead]) / draws[:, lead]
    value_remaining = float(np.quantile(remaining, settings.confidence))
    chances = {a.name: float(p) for a, p in zip(arms, best, strict=True)}
    # An arm the posteriors have all but ruled out gets (almost) no traffic, so it may
    # never reach the minimum: it must not hold the test open for ever.
    if declared is not None and declared in chances and all(a.sends for a in arms):
        reason = f"winner {declared}: declared earlier, the test stays closed"
        return Allocation(
            tuple(arms), {declared: 1.0}, chances, leader, value_remaining, declared, reason
        )
    short = [
        a.name
        for a in arms
        if a.sends < settings.min_variant_sends and chances[a.name] >= RULED_OUT
    ]
    if not short and value_remaining < settings.min_lift:
        reason = (
            f"winner {leader}: {settings.confidence:.0%} sure no variant beats it by more "
            f"than {settings.min_lift:.0%} (value remaining {value_remaining:.2%})"
        )
        return Allocation(
            tuple(arms), {leader: 1.0}, chances, leader, value_remaining, leader, reason
        )
    if short:
        reason = f"testing: {', '.join(short)} below {settings.min_variant_sends} closed sends"
    else:
        reason = (
            f"testing: value remaining {value_remaining:.2%} ≥ {settings.min_lift:.0%} "
            f"at {settings.confidence:.0%}"
        )
    return Allocation(tuple(arms), chances, chances, leader, value_remaining, None, reason)


def arm_results(conn: Connection, campaign: Campaign, now: datetime) -> list[Arm]:
    """Closed sends and conversions per variant of ``campaign`` (treated rows only)."""
    window = parse_duration(campaign.attribution_window)
    o = outbox
    counts: dict[str, tuple[int, int]] = {}
    if campaign.goal is not None:
        converted = reached(campaign.goal, window)
        rows = conn.execute(
            select(o.c.variant, func.count(), func.count().filter(converted))
            .where(
                and_(
                    o.c.campaign == campaign.name,
                    o.c.state == "sent",
                    o.c.sent_at <= literal(now - window, Instant),
                )
            )
            .group_by(o.c.variant)
        )
        counts = {str(v): (int(n), int(c)) for v, n, c in rows if v is not None}
    return [Arm(v.name, *counts.get(v.name, (0, 0))) for v in campaign.variants]


def declared_winner(conn: Connection, campaign: Campaign) -> str | None:
    """The variant an earlier batch sent to everyone (drawn with probability 1), if any."""
    o = outbox
    found = conn.execute(
        select(o.c.variant)
        .where(
            o.c.campaign == campaign.name,
            o.c.variant_probability == 1.0,
            o.c.assignment == "treated",
        )
        .order_by(o.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return str(found) if found is not None else None


def fixed(campaign: Campaign) -> Allocation:
    """The campaign's own weights, for tests that are not adaptive."""
    total = sum(v.weight for v in campaign.variants)
    weights = {v.name: v.weight / total for v in campaign.variants}
    arms = tuple(Arm(v.name, 0, 0) for v in campaign.variants)
    return Allocation(arms, weights, reason="fixed weights")


__all__ = ["Allocation", "Arm", "allocate", "arm_results", "declared_winner", "fixed"]
