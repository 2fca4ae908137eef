"""``narrowcast status``: what the workers are doing, read from the store alone.

Everything comes from the database, so it shows every worker's work, whichever
machine they run on: the queue by state and channel, paused channels (and
why), each campaign's last run and next one, and the latest errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from narrowcast.campaigns.model import Campaign
from narrowcast.campaigns.schedule import next_occurrence
from narrowcast.plaintable import format_table
from narrowcast.store.schema import campaign_runs, channel_pauses, deliveries, outbox

STATE_ORDER = (
    "planned",
    "retry",
    "claimed",
    "sending",
    "sent",
    "failed",
    "suppressed",
    "canceled",
    "expired",
    "unknown",
    "holdout",
)


@dataclass
class Status:
    at: datetime
    queue: dict[str, dict[str, int]] = field(default_factory=dict)
    """channel → state → rows."""
    due: dict[str, int] = field(default_factory=dict)
    """channel → rows that could be sent now."""
    paused: dict[str, dict[str, str]] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "queue": self.queue,
            "due": self.due,
            "paused": self.paused,
            "campaigns": self.campaigns,
            "errors": self.errors,
        }

    def text(self) -> str:
        states = [s for s in STATE_ORDER if any(s in q for q in self.queue.values())]
        rows = [
            (channel or "(holdout)", *(q.get(s, 0) for s in states), self.due.get(channel, 0))
            for channel, q in sorted(self.queue.items())
        ]
        out = [
            f"narrowcast status at {self.at:%Y-%m-%d %H:%M:%S} UTC",
            "",
            format_table(("channel", *states, "due now"), rows),
        ]
        if self.paused:
            out += [
                "",
                "PAUSED channels (their messages wait; fix, then "
                "`narrowcast channels resume CHANNEL`):",
            ]
            out += [
                f"  {c}: since {p['since'][:19]} — {p['reason']}" for c, p in self.paused.items()
            ]
        out += [
            "",
            format_table(
                ("campaign", "enabled", "last run", "planned", "next run"),
                [
                    (
                        c["name"],
                        "yes" if c["enabled"] else "no",
                        (c["last_run"] or "-")[:19],
                        c["last_planned"] if c["last_planned"] is not None else "-",
                        (c["next_run"] or ("on trigger" if c["triggered"] else "-"))[:19],
                    )
                    for c in self.campaigns
                ],
            ),
        ]
        if self.errors:
            out += ["", "latest errors:"]
            out += [
                f"  {e['at'][:19]} {e['campaign']} #{e['outbox_id']} {e['channel']} "
                f"{e['status']}: {e['error']}"
                for e in self.errors
            ]
        return "\n".join(out)


def status(conn: Connection, campaigns: Mapping[str, Campaign], now: datetime) -> Status:
    result = Status(now)
    o = outbox
    for channel, state, count in conn.execute(
        select(o.c.channel, o.c.state, func.count()).group_by(o.c.channel, o.c.state)
    ):
        result.queue.setdefault(channel or "", {})[state] = int(count)
    for channel, count in conn.execute(
        select(o.c.channel, func.count())
        .where(o.c.state.in_(("planned", "retry")), o.c.send_at <= now)
        .group_by(o.c.channel)
    ):
        result.due[channel] = int(count)
    for channel, reason, since, by in conn.execute(select(channel_pauses)):
        result.paused[channel] = {"reason": reason, "since": since.isoformat(), "by": by}
    runs = campaign_runs
    latest = dict(
        (name, (at, planned))
        for name, at, planned in conn.execute(
            select(runs.c.campaign, runs.c.finished_at, runs.c.planned)
            .where(runs.c.state == "planned")
            .order_by(runs.c.finished_at)
        )
    )
    for name, campaign in sorted(campaigns.items()):
        last = latest.get(name)
        upcoming = None if campaign.triggered else next_occurrence(campaign, now)
        result.campaigns.append(
            {
                "name": name,
                "enabled": campaign.enabled,
                "triggered": campaign.triggered,
                "last_run": last[0].isoformat() if last and last[0] else None,
                "last_planned": last[1] if last else None,
                "next_run": upcoming.isoformat() if upcoming and campaign.enabled else None,
            }
        )
    d = deliveries
    for at, outbox_id, channel, status_, error, campaign_name in conn.execute(
        select(
            d.c.finished_at, d.c.outbox_id, d.c.channel, d.c.status, d.c.error_text, o.c.campaign
        )
        .join(o, o.c.id == d.c.outbox_id)
        .where(d.c.error_text.is_not(None))
        .order_by(d.c.id.desc())
        .limit(10)
    ):
        result.errors.append(
            {
                "at": (at or now).isoformat(),
                "outbox_id": outbox_id,
                "channel": channel,
                "status": status_,
                "error": error,
                "campaign": campaign_name,
            }
        )
    return result
