"""``narrowcast report``: what each campaign did, and whether it made a difference.

Per campaign × variant × channel (and the campaign's audience segment):
planned, sent, failed, delivered, opened (machine opens excluded), clicked —
from the outbox and the engagement events the HTTP API records — and, for
campaigns with a ``goal``, conversions within the attribution window after the
message's send time and their revenue (the goal event's ``value``).
Engagement columns are zero, not absent, until engagement events arrive.

Then a section per campaign, made of the blocks of ``report_blocks.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, exists, func, literal, select

from narrowcast.campaigns.model import Campaign
from narrowcast.plaintable import format_table
from narrowcast.planning.settings import LearningSettings
from narrowcast.segments.sql import json_property
from narrowcast.store.schema import Instant, events, outbox
from narrowcast.worker.report_blocks import (
    ASSIGNED,
    Block,
    Comparison,
    IntentToTreat,
    Scope,
    attribution,
    converting,
    distribution,
    intent_to_treat,
    sample_ratio_check,
)
from narrowcast.worker.report_variants import ab_test, variant_rates

BLOCKS: tuple[Callable[[Connection, Scope], Block | None], ...] = (
    sample_ratio_check,
    intent_to_treat,
    ab_test,
    variant_rates,
    attribution,
    distribution,
)
"""The blocks of a campaign's section, in the order shown. A new block is a function
``(conn, scope) -> Block | None`` added here."""


ENGAGEMENT = {
    "delivered": "message_delivered",
    "opened": "message_opened",
    "clicked": "message_clicked",
}


@dataclass
class CampaignSection:
    name: str
    blocks: list[Block] = field(default_factory=list)

    def block(self, key: str) -> Block | None:
        return next((b for b in self.blocks if b.key == key), None)

    def text(self) -> str:
        return "\n".join([self.name, *("  " + line for b in self.blocks for line in b.lines())])

    def as_json(self) -> dict[str, Any]:
        return {block.key: block.as_json() for block in self.blocks}


@dataclass
class Report:
    since: datetime | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    campaigns: dict[str, CampaignSection] = field(default_factory=dict)

    @property
    def holdouts(self) -> dict[str, Comparison]:
        """Treated vs the campaign's holdout, for every campaign with a goal."""
        found = {}
        for name, section in self.campaigns.items():
            block = section.block(IntentToTreat.key)
            if isinstance(block, IntentToTreat) and block.vs_holdout is not None:
                found[name] = block.vs_holdout
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "rows": self.rows,
            "campaigns": {name: s.as_json() for name, s in self.campaigns.items()},
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
        return "\n\n".join(
            [format_table(header, table), *(s.text() for s in self.campaigns.values())]
        )


def report(
    conn: Connection,
    campaigns: Mapping[str, Campaign],
    since: datetime | None = None,
    only: str | None = None,
    learning: LearningSettings | None = None,
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
    columns = [
        o.c.campaign,
        o.c.variant,
        o.c.channel,
        func.count().filter(ASSIGNED == "treated").label("planned"),
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
    names: list[str] = []
    for row in rows:
        if row["campaign"] not in names:
            names.append(row["campaign"])
        if row["channel"] is None:
            continue  # holdout and control groups: in the campaign's section below
        campaign = campaigns.get(row["campaign"])
        converted, revenue = _conversions(
            conn, campaign, row["campaign"], row["variant"], row["channel"], since
        )
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
    for name in names:
        scope = Scope(name, campaigns.get(name), since, learning or LearningSettings())
        section = CampaignSection(name)
        for build in BLOCKS:
            block = build(conn, scope)
            if block is not None:
                section.blocks.append(block)
        result.campaigns[name] = section
    return result


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
    converted, revenue = converting(campaign)
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


__all__ = ["Block", "CampaignSection", "Comparison", "Report", "Scope", "report"]
