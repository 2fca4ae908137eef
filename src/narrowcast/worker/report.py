"""``narrowcast report``: what each campaign did, and whether it made a difference.

Per campaign × variant × channel (and the campaign's audience segment):
planned, sent, failed, delivered, opened (machine opens excluded), clicked —
from the outbox and the engagement events the HTTP API records — and, for
campaigns with a ``goal``, conversions within the attribution window after the
message's send time and their revenue (the goal event's ``value``).

The holdout group is measured the same way from its planned send time, and
the campaign's treated group (everyone assigned a message, sent or not:
intent to treat) is compared with it: conversion rates, their difference and
a 95 % interval (normal approximation). Engagement columns are zero, not
absent, until engagement events arrive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, literal, select

from narrowcast.campaigns.model import Campaign
from narrowcast.plaintable import format_table
from narrowcast.segments.language import parse_duration
from narrowcast.segments.sql import PlusInterval, json_property
from narrowcast.store.schema import Instant, events, outbox

ENGAGEMENT = {
    "delivered": "message_delivered",
    "opened": "message_opened",
    "clicked": "message_clicked",
}


@dataclass
class Comparison:
    treated: int
    treated_converted: int
    control: int
    control_converted: int

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
    def interval(self) -> tuple[float, float] | None:
        """95 % interval of the difference (normal approximation); None without a control."""
        if not self.treated or not self.control:
            return None
        p1, p2 = self.treated_rate, self.control_rate
        se = math.sqrt(p1 * (1 - p1) / self.treated + p2 * (1 - p2) / self.control)
        return self.difference - 1.96 * se, self.difference + 1.96 * se


@dataclass
class Report:
    since: datetime | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    holdouts: dict[str, Comparison] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "rows": self.rows,
            "holdout": {
                name: {
                    "treated": c.treated,
                    "treated_converted": c.treated_converted,
                    "treated_rate": c.treated_rate,
                    "control": c.control,
                    "control_converted": c.control_converted,
                    "control_rate": c.control_rate,
                    "difference": c.difference,
                    "interval_95": list(c.interval) if c.interval else None,
                }
                for name, c in self.holdouts.items()
            },
        }

    def text(self) -> str:
        header = (
            "campaign",
            "variant",
            "channel",
            "segment",
            "planned",
            "sent",
            "failed",
            "delivered",
            "opened",
            "clicked",
            "converted",
            "revenue",
        )
        table = [
            (
                r["campaign"],
                r["variant"] or "-",
                r["channel"],
                r["segment"] or "-",
                r["planned"],
                r["sent"],
                r["failed"],
                r["delivered"],
                r["opened"],
                r["clicked"],
                r["converted"],
                f"{r['revenue']:,.2f}",
            )
            for r in self.rows
        ]
        out = [format_table(header, table)]
        for name, c in self.holdouts.items():
            interval = c.interval
            shown = f"[{interval[0]:+.2%}, {interval[1]:+.2%}]" if interval else "(no control)"
            out.append(
                f"{name}: treated {c.treated_rate:.2%} ({c.treated_converted:,}/{c.treated:,}) vs "
                f"holdout {c.control_rate:.2%} ({c.control_converted:,}/{c.control:,}): "
                f"{c.difference:+.2%}, 95 % interval {shown}"
            )
        return "\n".join(out)


def report(
    conn: Connection,
    campaigns: Mapping[str, Campaign],
    since: datetime | None = None,
    only: str | None = None,
) -> Report:
    result = Report(since)
    o = outbox
    where = [o.c.campaign == only] if only else []
    if since is not None:
        where.append(o.c.send_at >= literal(since, Instant))
    engaged = {}
    for name, kind in ENGAGEMENT.items():
        e = events.alias(name)
        condition = [
            e.c.type == kind,
            e.c.customer_id == o.c.customer_id,
            json_property(e, "outbox_id", "number") == o.c.id,
        ]
        if name == "opened":
            condition.append(func.coalesce(json_property(e, "machine", "bool"), False).is_(False))
        engaged[name] = exists().where(*condition)
    treated = o.c.state != "holdout"
    columns = [
        o.c.campaign,
        o.c.variant,
        o.c.channel,
        func.count().filter(treated).label("planned"),
        func.count().filter(o.c.state == "sent").label("sent"),
        func.count().filter(o.c.state == "failed").label("failed"),
        *(func.count().filter(exists).label(name) for name, exists in engaged.items()),
    ]
    rows = conn.execute(
        select(*columns)
        .where(*where)
        .group_by(o.c.campaign, o.c.variant, o.c.channel)
        .order_by(o.c.campaign, o.c.variant, o.c.channel)
    ).mappings()
    for row in rows:
        campaign = campaigns.get(row["campaign"])
        converted, revenue = _conversions(
            conn, campaign, row["campaign"], row["variant"], row["channel"], since
        )
        if row["channel"] is None:
            continue  # the holdout group: reported in the comparison below
        result.rows.append(
            {
                "campaign": row["campaign"],
                "variant": row["variant"],
                "channel": row["channel"],
                "segment": campaign.segment if campaign else None,
                "planned": row["planned"],
                "sent": row["sent"],
                "failed": row["failed"],
                **{name: row[name] for name in ENGAGEMENT},
                "converted": converted,
                "revenue": revenue,
            }
        )
    for name in sorted({r["campaign"] for r in result.rows}):
        campaign = campaigns.get(name)
        if campaign is None or campaign.goal is None:
            continue
        result.holdouts[name] = _comparison(conn, campaign, since)
    return result


def _converting(campaign: Campaign) -> Any:
    """(converted?, revenue) expressions for an outbox row of ``campaign``."""
    o = outbox
    window = parse_duration(campaign.attribution_window)
    e = events.alias("goal")
    after = and_(
        e.c.type == campaign.goal,
        e.c.customer_id == o.c.customer_id,
        e.c.ts > o.c.send_at,
        e.c.ts <= PlusInterval(o.c.send_at, literal(window.total_seconds())),
    )
    converted = exists().where(after)
    revenue = select(func.coalesce(func.sum(e.c.value), 0.0)).where(after).scalar_subquery()
    return converted, revenue


def _conversions(
    conn: Connection,
    campaign: Campaign | None,
    name: str,
    variant: str | None,
    channel: str | None,
    since: datetime | None,
) -> tuple[int, float]:
    if campaign is None or campaign.goal is None or channel is None:
        return 0, 0.0
    o = outbox
    converted, revenue = _converting(campaign)
    where = [o.c.campaign == name, o.c.channel == channel, o.c.state == "sent"]
    where.append(o.c.variant == variant if variant is not None else o.c.variant.is_(None))
    if since is not None:
        where.append(o.c.send_at >= literal(since, Instant))
    count, total = conn.execute(
        select(
            func.count().filter(converted),
            func.coalesce(func.sum(case((converted, revenue), else_=0.0)), 0.0),
        ).where(*where)
    ).one()
    return int(count), float(total)


def _comparison(conn: Connection, campaign: Campaign, since: datetime | None) -> Comparison:
    o = outbox
    converted, _ = _converting(campaign)
    where = [o.c.campaign == campaign.name]
    if since is not None:
        where.append(o.c.send_at >= literal(since, Instant))
    treated = o.c.state != "holdout"
    row = conn.execute(
        select(
            func.count().filter(treated),
            func.count().filter(and_(treated, converted)),
            func.count().filter(o.c.state == "holdout"),
            func.count().filter(and_(o.c.state == "holdout", converted)),
        ).where(*where)
    ).one()
    return Comparison(*(int(v) for v in row))
