"""The sections of ``narrowcast report``: one per campaign, made of blocks (``report.BLOCKS``),
in this order:

* **sample ratio** — treated vs holdout counts against the campaign's
  ``holdout`` share (chi-square); a mismatch is shouted, because it means the
  assignment or the logging is broken and no comparison below can be trusted;
* **intent to treat** — every outbox row by its assignment: ``treated``
  (sent or not), the campaign's ``holdout``, the global ``control`` group.
  Each group is measured from its planned send time: conversion rate and
  revenue per assigned message; treated minus holdout and treated minus
  control with 95 % intervals (``optimize/uplift.py``). This is the uplift;
* **A/B test** and **variants** — in ``report_variants.py``;
* **attribution** — goal events whose last touch (the most recent message
  *sent* to the customer, by any campaign, before the event) was this
  campaign, within its attribution window. Credit, not effect: never uplift;
* **distribution** — planned messages by channel; sent messages by the local
  hour they went out at (the ``local_hour`` of their ``message_sent`` event).

Rows written before migration 0007 have no ``assignment``: a ``holdout`` row
is the campaign's holdout and every other row is treated. A treated row
without a ``variant_probability`` is taken to have been drawn with its
variant's share of the campaign's treated rows (fixed weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection, and_, case, exists, func, literal, or_, select

from narrowcast.campaigns.model import Campaign
from narrowcast.optimize.trials import goal_after
from narrowcast.optimize.uplift import (
    MISMATCH_P,
    Difference,
    Moments,
    SampleRatio,
    mean_difference,
    rate_difference,
    sample_ratio,
)
from narrowcast.plaintable import format_table
from narrowcast.planning.settings import LearningSettings
from narrowcast.segments.language import parse_duration
from narrowcast.segments.sql import PlusInterval, json_property
from narrowcast.store.schema import Instant, events, outbox

GROUPS = ("treated", "holdout", "control")
SENT = "message_sent"

# The row's assignment; rows from before migration 0007 have none and are derived.
ASSIGNED = func.coalesce(
    outbox.c.assignment, case((outbox.c.state == "holdout", "holdout"), else_="treated")
)
_NO_MONEY = Moments(0, 0.0, 0.0)


@dataclass
class Comparison:
    """Treated vs one control group, by assignment (intent to treat)."""

    treated: int
    treated_converted: int
    control: int
    control_converted: int
    treated_revenue: Moments = _NO_MONEY
    control_revenue: Moments = _NO_MONEY
    against: str = "holdout"
    """``holdout`` (the campaign's) or ``control`` (the global control group)."""

    @property
    def treated_rate(self) -> float:
        return self.treated_converted / self.treated if self.treated else 0.0

    @property
    def control_rate(self) -> float:
        return self.control_converted / self.control if self.control else 0.0

    @property
    def difference(self) -> float:
        return self.treated_rate - self.control_rate

    @property
    def conversion(self) -> Difference:
        """The rate difference with Newcombe's hybrid score interval."""
        return rate_difference(
            self.treated_converted, self.treated, self.control_converted, self.control
        )

    @property
    def revenue(self) -> Difference:
        """Revenue per assigned message, treated minus control, with Welch's interval."""
        return mean_difference(self.treated_revenue, self.control_revenue)

    @property
    def constant_revenue(self) -> str | None:
        """Which group's revenue did not vary at all (typically: nobody in it bought)."""
        for name, moments in (
            ("treated", self.treated_revenue),
            (self.against, self.control_revenue),
        ):
            if moments.variance == 0:
                return name
        return None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % interval of ``difference`` (Newcombe); None without a control."""
        found = self.conversion.interval
        return (found.low, found.high) if found else None

    def as_json(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "treated": self.treated,
            "treated_converted": self.treated_converted,
            "treated_rate": self.treated_rate,
            "control": self.control,
            "control_converted": self.control_converted,
            "control_rate": self.control_rate,
            "difference": self.difference,
            "interval_95": list(self.interval) if self.interval else None,
            "method": self.conversion.method,
            "revenue_per_customer": {
                **_difference_json(self.revenue),
                "constant_group": self.constant_revenue,
            },
        }


class Block(Protocol):
    """One part of a campaign's section: text lines and a JSON value under ``key``.

    A block is built by a function in ``BLOCKS`` from a connection and a
    ``Scope``; that function returns None when the block has nothing to say for
    the campaign (no goal, no variants, …). The text says the same as the JSON.
    """

    key: ClassVar[str]

    def lines(self) -> list[str]: ...

    def as_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Scope:
    """The outbox rows of one campaign in the report's period."""

    name: str
    campaign: Campaign | None
    """None when the campaign's file is gone: only what needs no settings is shown."""
    since: datetime | None
    learning: LearningSettings = LearningSettings()
    """The operator's ``[planning.learning]``: when an A/B test has a winner."""

    @property
    def where(self) -> list[Any]:
        where = [outbox.c.campaign == self.name]
        if self.since is not None:
            where.append(outbox.c.send_at >= literal(self.since, Instant))
        return where

    @property
    def goal(self) -> str | None:
        return self.campaign.goal if self.campaign else None


# --- sample ratio -----------------------------------------------------------------------------


@dataclass
class SampleRatioCheck:
    key: ClassVar[str] = "sample_ratio"
    holdout_share: float
    found: SampleRatio

    def lines(self) -> list[str]:
        (treated, holdout), (want_treated, want_holdout) = self.found.observed, self.found.expected
        counts = (
            f"{treated:,} treated / {holdout:,} holdout, expected {self.holdout_share:.1%} "
            f"holdout ({want_treated:,.0f} / {want_holdout:,.0f})"
        )
        p = self.found.p_value
        if p is None:
            return [f"sample ratio: {counts}: nothing to test yet"]
        if not self.found.mismatch:
            return [f"sample ratio: {counts}: p = {p:.3g}, OK"]
        return [
            f"!! SAMPLE RATIO MISMATCH: {counts}: p = {p:.2g} < {MISMATCH_P}.",
            "!! The assignment or its logging is broken (or holdout changed while the campaign",
            "!! ran): do not trust the comparisons below until the cause is found.",
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "holdout_share": self.holdout_share,
            "observed": {"treated": self.found.observed[0], "holdout": self.found.observed[1]},
            "expected": {"treated": self.found.expected[0], "holdout": self.found.expected[1]},
            # A group with a share of 0 and rows anyway has an infinite statistic (not JSON).
            "chi_square": finite(self.found.statistic),
            "p_value": self.found.p_value,
            "mismatch": self.found.mismatch,
        }


def sample_ratio_check(conn: Connection, scope: Scope) -> SampleRatioCheck | None:
    """Treated vs holdout sizes against the campaign's ``holdout`` share."""
    if scope.campaign is None:
        return None
    counts: dict[str, int] = dict(
        conn.execute(
            select(ASSIGNED, func.count())
            .where(*scope.where, ASSIGNED.in_(("treated", "holdout")))
            .group_by(ASSIGNED)
        ).all()
    )
    treated, holdout = int(counts.get("treated", 0)), int(counts.get("holdout", 0))
    share = scope.campaign.holdout
    if share == 0 and holdout == 0:
        return None  # no holdout configured, none drawn: nothing to check
    return SampleRatioCheck(share, sample_ratio([treated, holdout], [1 - share, share]))


# --- intent to treat --------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One assignment group: its rows (sent or not), conversions and revenue per row."""

    assigned: int
    converted: int
    revenue: Moments

    @property
    def rate(self) -> float | None:
        return self.converted / self.assigned if self.assigned else None

    def as_json(self) -> dict[str, Any]:
        return {
            "assigned": self.assigned,
            "converted": self.converted,
            "rate": self.rate,
            "revenue": self.revenue.total,
            "revenue_per_customer": self.revenue.mean,
        }


@dataclass
class IntentToTreat:
    key: ClassVar[str] = "intent_to_treat"
    goal: str | None
    attribution_window: str | None
    groups: dict[str, Group]
    vs_holdout: Comparison | None = None
    """Always there with a goal (empty holdout: no interval)."""
    vs_control: Comparison | None = None
    """Only when the global control group has rows in the campaign."""

    def lines(self) -> list[str]:
        if self.goal is None:
            sizes = ", ".join(f"{g} {self.groups[g].assigned:,}" for g in self.groups)
            return [f"assigned: {sizes} (no goal: nothing to compare)"]
        lines = [
            f"intent to treat (every assigned message counts, sent or not; "
            f"goal {self.goal!r} within {self.attribution_window}):"
        ]
        table = [
            (
                name,
                g.assigned,
                g.converted,
                percent(g.rate),
                "-" if g.revenue.mean is None else f"{g.revenue.mean:,.2f}",
            )
            for name, g in self.groups.items()
        ]
        header = ("group", "assigned", "converted", "rate", "revenue/customer")
        lines += ["  " + line for line in format_table(header, table).splitlines()]
        for label, c in (("holdout", self.vs_holdout), ("global control", self.vs_control)):
            if c is None:
                continue
            conversion, revenue = c.conversion, c.revenue
            if conversion.estimate is None:
                lines.append(f"uplift vs {label}: no {label} rows, nothing to compare")
                continue
            lines.append(f"uplift vs {label}:")
            lines.append(f"  conversion        {_points(conversion)}")
            lines.append(f"  revenue/customer  {_money(revenue)}")
            if revenue.interval is not None and c.constant_revenue:
                lines.append(
                    f"  (every {c.constant_revenue} row has the same revenue, e.g. nobody bought: "
                    "Welch takes its spread as 0, so this interval is too narrow)"
                )
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "attribution_window": self.attribution_window,
            "groups": {name: g.as_json() for name, g in self.groups.items()},
            "uplift": {
                c.against: c.as_json() for c in (self.vs_holdout, self.vs_control) if c is not None
            },
        }


def intent_to_treat(conn: Connection, scope: Scope) -> IntentToTreat | None:
    """Conversion and revenue per assignment group; treated minus each control group."""
    campaign = scope.campaign
    if campaign is None or campaign.goal is None:
        counts = conn.execute(
            select(ASSIGNED, func.count()).where(*scope.where).group_by(ASSIGNED)
        ).all()
        groups = {str(a): Group(int(n), 0, _NO_MONEY) for a, n in counts}
        return IntentToTreat(None, None, _ordered(groups))
    converted, revenue = converting(campaign)
    per_row = (
        select(
            ASSIGNED.label("assignment"),
            case((converted, 1), else_=0).label("converted"),
            revenue.label("revenue"),
        )
        .where(*scope.where)
        .subquery("per_row")
    )
    r = per_row.c
    groups = {
        str(assignment): Group(int(n), int(hits), Moments(int(n), float(total), float(squares)))
        for assignment, n, hits, total, squares in conn.execute(
            select(
                r.assignment,
                func.count(),
                func.sum(r.converted),
                func.sum(r.revenue),
                func.sum(r.revenue * r.revenue),
            ).group_by(r.assignment)
        )
    }
    treated = groups.get("treated", Group(0, 0, _NO_MONEY))
    comparisons = {}
    for against in ("holdout", "control"):
        other = groups.get(against)
        if other is None and against == "control":
            continue
        other = other or Group(0, 0, _NO_MONEY)
        comparisons[against] = Comparison(
            treated.assigned,
            treated.converted,
            other.assigned,
            other.converted,
            treated.revenue,
            other.revenue,
            against,
        )
    return IntentToTreat(
        campaign.goal,
        campaign.attribution_window,
        _ordered(groups),
        comparisons.get("holdout"),
        comparisons.get("control"),
    )


# --- attribution ------------------------------------------------------------------------------


@dataclass
class Attribution:
    key: ClassVar[str] = "attribution"
    goal: str
    window: str
    conversions: int
    revenue: float

    def lines(self) -> list[str]:
        return [
            f"attribution (last touch, not uplift): {self.conversions:,} {self.goal!r} event(s), "
            f"revenue {self.revenue:,.2f},",
            f"  came within {self.window} of a message of this campaign that was the customer's "
            "last one before them",
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": "last touch",
            "goal": self.goal,
            "window": self.window,
            "conversions": self.conversions,
            "revenue": self.revenue,
        }


def attribution(conn: Connection, scope: Scope) -> Attribution | None:
    """Goal events whose most recent sent message (any campaign) was this campaign's."""
    campaign = scope.campaign
    if campaign is None or campaign.goal is None:
        return None
    window = parse_duration(campaign.attribution_window)
    e = events.alias("conversion")
    touch = outbox.alias("touch")
    later = outbox.alias("later")
    newer = exists().where(
        later.c.customer_id == e.c.customer_id,
        later.c.state == "sent",
        later.c.sent_at < e.c.ts,
        or_(
            later.c.sent_at > touch.c.sent_at,
            and_(later.c.sent_at == touch.c.sent_at, later.c.id > touch.c.id),
        ),
    )
    where = [
        e.c.type == campaign.goal,
        touch.c.campaign == scope.name,
        touch.c.state == "sent",
        touch.c.sent_at < e.c.ts,
        e.c.ts <= PlusInterval(touch.c.sent_at, literal(window.total_seconds())),
        ~newer,
    ]
    if scope.since is not None:
        where.append(touch.c.send_at >= literal(scope.since, Instant))
    count, revenue = conn.execute(
        select(func.count(), func.coalesce(func.sum(e.c.value), 0.0))
        .select_from(e.join(touch, touch.c.customer_id == e.c.customer_id))
        .where(*where)
    ).one()
    return Attribution(campaign.goal, campaign.attribution_window, int(count), float(revenue))


# --- distribution -----------------------------------------------------------------------------


@dataclass
class Distribution:
    key: ClassVar[str] = "distribution"
    channels: dict[str, int]
    """Treated rows (planned messages, sent or not) per channel."""
    local_hours: dict[str, int]
    """Sent messages per local hour ("00"–"23"; "unknown" when the event has none)."""

    def lines(self) -> list[str]:
        lines = []
        if self.channels:
            total = sum(self.channels.values())
            shown = ", ".join(f"{c} {n:,} ({n / total:.0%})" for c, n in self.channels.items())
            lines.append(f"planned by channel: {shown}")
        if self.local_hours:
            lines.append("sent by local hour:")
            peak = max(self.local_hours.values())
            for hour, count in self.local_hours.items():
                label = f"{hour}:00" if hour != "unknown" else hour
                bar = "█" * max(1, round(30 * count / peak))
                lines.append(f"  {label:>7} {count:>9,} {bar}")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"channels": self.channels, "local_hours": self.local_hours}


def distribution(conn: Connection, scope: Scope) -> Distribution | None:
    """Planned messages by channel, sent ones by local hour."""
    o = outbox
    channels = {
        str(c): int(n)
        for c, n in conn.execute(
            select(o.c.channel, func.count())
            .where(*scope.where, ASSIGNED == "treated", o.c.channel.is_not(None))
            .group_by(o.c.channel)
            .order_by(func.count().desc(), o.c.channel)
        )
    }
    e = events.alias("sent")
    hour = json_property(e, "local_hour", "text")
    joined = o.join(
        e,
        and_(
            e.c.customer_id == o.c.customer_id,
            e.c.type == SENT,
            json_property(e, "outbox_id", "number") == o.c.id,
        ),
    )
    counts: dict[str, int] = {}
    for value, n in conn.execute(
        select(hour, func.count()).select_from(joined).where(*scope.where).group_by(hour)
    ):
        label = _hour(value)
        counts[label] = counts.get(label, 0) + int(n)
    hours = dict(sorted(counts.items(), key=lambda item: (item[0] == "unknown", item[0])))
    if not channels and not hours:
        return None
    return Distribution(channels, hours)


# --- shared -----------------------------------------------------------------------------------


def converting(campaign: Campaign) -> Any:
    """(converted?, revenue) expressions for an outbox row of ``campaign``."""
    assert campaign.goal is not None
    window = parse_duration(campaign.attribution_window)
    # From the planned send time: holdout rows are never sent, and are measured the same way.
    e, after = goal_after(campaign.goal, window, outbox.c.customer_id, outbox.c.send_at)
    converted = exists().where(after)
    revenue = select(func.coalesce(func.sum(e.c.value), 0.0)).where(after).scalar_subquery()
    return converted, revenue


def _ordered(groups: dict[str, Group]) -> dict[str, Group]:
    known = {name: groups[name] for name in GROUPS if name in groups}
    return known | {name: g for name, g in sorted(groups.items()) if name not in known}


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _hour(value: object) -> str:
    try:
        return f"{int(float(str(value))):02d}"
    except ValueError:
        return "unknown"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def interval_text(found: Any) -> str:
    return "-" if found is None else f"[{found.low:.2%}, {found.high:.2%}]"


def _points(found: Difference) -> str:
    assert found.estimate is not None
    shown = f"{100 * found.estimate:+.2f} pp"
    if found.interval is None:
        return f"{shown} (no interval)"
    low, high = 100 * found.interval.low, 100 * found.interval.high
    return f"{shown}, 95 % interval [{low:+.2f}, {high:+.2f}] ({found.method})"


def _money(found: Difference) -> str:
    if found.estimate is None:
        return "-"
    shown = f"{found.estimate:+,.2f}"
    if found.interval is None:
        return f"{shown} (no interval: no spread)"
    low, high = found.interval.low, found.interval.high
    return f"{shown}, 95 % interval [{low:+,.2f}, {high:+,.2f}] ({found.method})"


def _difference_json(found: Difference) -> dict[str, Any]:
    return {
        "difference": found.estimate,
        "interval_95": found.interval.as_list() if found.interval else None,
        "method": found.method,
    }
