"""The variant blocks of ``narrowcast report``: each arm's rates, and the A/B test's state.

* **A/B test** — for a campaign whose variants the bandit allocates: each
  arm's closed sends and conversions, posterior mean and 95 % credible
  interval, chance of being the best and share of the next batch, and the
  winner once there is one (``optimize/variants.py``);
* **variants** — each arm's conversion rate, raw and weighted by the inverse
  of the probability the arm was drawn with (IPW): the raw rate of an arm the
  allocator favoured late is biased by whatever changed meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from scipy.stats import beta as beta_dist  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Connection, case, func, select

from narrowcast.optimize.learner import adaptive
from narrowcast.optimize.uplift import (
    WeightedRate,
    ipw_rate,
    wilson,
)
from narrowcast.optimize.variants import Allocation, allocate, arm_results, declared_winner
from narrowcast.optimize.variants import Arm as VariantArm
from narrowcast.plaintable import format_table
from narrowcast.store.schema import outbox
from narrowcast.worker.report_blocks import (
    ASSIGNED,
    Scope,
    converting,
    finite,
    interval_text,
    percent,
)

# --- the A/B test -------------------------------------------------------------------------


@dataclass
class AbTest:
    """Where an adaptive A/B test stands: the posterior per arm and the winner, if any."""

    key: ClassVar[str] = "ab_test"
    goal: str
    allocation: Allocation

    def lines(self) -> list[str]:
        a = self.allocation
        status = f"winner {a.winner}" if a.winner else "testing"
        lines = [f"A/B test on {self.goal} (bandit): {status} — {a.reason}"]
        rows = []
        for arm, (low, high) in zip(a.arms, self._intervals(), strict=True):
            rows.append(
                (
                    arm.name,
                    f"{arm.conversions:,}/{arm.sends:,}",
                    percent(self._mean(arm)),
                    f"[{low:.2%}, {high:.2%}]",
                    f"{a.best.get(arm.name, 0.0):.3f}",
                    f"{a.weights.get(arm.name, 0.0):.3f}",
                )
            )
        header = ("arm", "converted/closed", "posterior", "95% credible", "P(best)", "next share")
        lines += ["  " + line for line in format_table(header, rows).splitlines()]
        return lines

    def as_json(self) -> dict[str, Any]:
        a = self.allocation
        return {
            "goal": self.goal,
            "winner": a.winner,
            "leader": a.leader,
            "value_remaining": finite(a.value_remaining),
            "reason": a.reason,
            "arms": [
                {
                    "name": arm.name,
                    "sends": arm.sends,
                    "conversions": arm.conversions,
                    "posterior_mean": self._mean(arm),
                    "credible_95": list(interval),
                    "p_best": a.best.get(arm.name, 0.0),
                    "next_share": a.weights.get(arm.name, 0.0),
                }
                for arm, interval in zip(a.arms, self._intervals(), strict=True)
            ],
        }

    @staticmethod
    def _mean(arm: VariantArm) -> float:
        return (1 + arm.conversions) / (2 + arm.sends)

    def _intervals(self) -> list[tuple[float, float]]:
        found = []
        for arm in self.allocation.arms:
            a, b = 1 + arm.conversions, 1 + arm.sends - arm.conversions
            found.append((float(beta_dist.ppf(0.025, a, b)), float(beta_dist.ppf(0.975, a, b))))
        return found


def ab_test(conn: Connection, scope: Scope) -> AbTest | None:
    """The bandit's view of the campaign's variants now (closed attribution windows only)."""
    campaign = scope.campaign
    if campaign is None or campaign.goal is None or not adaptive(campaign):
        return None
    arms = arm_results(conn, campaign, datetime.now(UTC))
    declared = declared_winner(conn, campaign)
    return AbTest(campaign.goal, allocate(arms, scope.learning, 0, declared))


# --- variants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    name: str
    found: WeightedRate
    unknown_probability: int
    """Rows without a logged probability (taken as the variant's share of the rows)."""

    def as_json(self) -> dict[str, Any]:
        raw = wilson(self.found.converted, self.found.rows)
        return {
            "variant": self.name,
            "assigned": self.found.rows,
            "converted": self.found.converted,
            "raw_rate": self.found.raw,
            "raw_interval_95": raw.as_list() if raw else None,
            "ipw_rate": self.found.rate,
            "ipw_interval_95": self.found.interval.as_list() if self.found.interval else None,
            "unknown_probability": self.unknown_probability,
        }


@dataclass
class VariantRates:
    key: ClassVar[str] = "variants"
    arms: list[Arm]

    def lines(self) -> list[str]:
        header = ("variant", "assigned", "converted", "raw rate", "IPW rate", "IPW 95 % interval")
        table = [
            (
                arm.name,
                arm.found.rows,
                arm.found.converted,
                percent(arm.found.raw),
                percent(arm.found.rate),
                interval_text(arm.found.interval),
            )
            for arm in self.arms
        ]
        lines = [
            "variants (treated; IPW: each row weighs 1 / the probability its arm was drawn with):"
        ]
        lines += ["  " + line for line in format_table(header, table).splitlines()]
        unknown = sum(arm.unknown_probability for arm in self.arms)
        if unknown:
            lines.append(
                f"  {unknown:,} row(s) without a logged probability: taken as drawn with "
                "their variant's share of the rows"
            )
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"method": "IPW (Hájek), delta method", "arms": [a.as_json() for a in self.arms]}


def variant_rates(conn: Connection, scope: Scope) -> VariantRates | None:
    """Each arm's conversion among the treated rows: raw, and by inverse propensity."""
    campaign = scope.campaign
    if campaign is None or campaign.goal is None:
        return None
    o = outbox
    converted, _ = converting(campaign)
    per_row = (
        select(
            o.c.variant,
            o.c.variant_probability.label("probability"),
            case((converted, 1), else_=0).label("converted"),
        )
        .where(*scope.where, ASSIGNED == "treated", o.c.variant.is_not(None))
        .subquery("per_row")
    )
    r = per_row.c
    grouped = conn.execute(
        select(r.variant, r.probability, r.converted, func.count()).group_by(
            r.variant, r.probability, r.converted
        )
    ).all()
    if not grouped:
        return None
    total = sum(int(n) for *_, n in grouped)
    size: dict[str, int] = {}
    for variant, _p, _y, n in grouped:
        size[variant] = size.get(variant, 0) + int(n)
    arms = []
    for variant in sorted(size):
        mine = [(p, int(y), int(n)) for v, p, y, n in grouped if v == variant]
        found = ipw_rate(
            [size[variant] / total if p is None else float(p) for p, _, _ in mine],
            [y for _, y, _ in mine],
            [n for _, _, n in mine],
        )
        arms.append(Arm(variant, found, sum(n for p, _, n in mine if p is None)))
    return VariantRates(arms)
