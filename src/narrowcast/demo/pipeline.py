"""The whole pipeline on the demo shop: segments, campaigns, planning, sending, results.

After ``narrowcast demo`` has filled the store, this runs the campaigns of the
configured campaigns folder the way the worker would over the next day, with
a simulated clock: two segment snapshots (a week ago and now, so that "entered
segment" triggers have something to trigger on), then a worker tick every two
hours for 24 hours — planning what falls due and sending it through the
configured adapters (by default the file adapter writing ``outbox/`` and the
store-backed in-app and web adapters, so no credentials are needed).

Then every message sent draws a response from its customer's demo behaviour
(``responses.py``), so that reports and the learning have results to read.
It prints what was sent per campaign, per channel and per local send hour.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from narrowcast.config import Settings
from narrowcast.demo.responses import Responses, respond
from narrowcast.dispatch.clock import FixedClock
from narrowcast.plaintable import format_table
from narrowcast.segments.membership import snapshot
from narrowcast.segments.sql import json_property
from narrowcast.store import Store
from narrowcast.store.schema import events, outbox
from narrowcast.worker.worker import Worker

HOURS = 24
STEP = timedelta(hours=2)


@dataclass
class PipelineReport:
    start: datetime
    campaigns: int = 0
    by_campaign: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(campaign, channel, sent, other outcomes)."""
    hours: Counter[int] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    responses: Responses | None = None

    def summary(self) -> str:
        if not self.campaigns:
            return "no campaigns found (campaigns/*.toml): nothing was planned or sent"
        sent = sum(s for _, _, s, _ in self.by_campaign)
        lines = [
            f"\nthe worker over the day after {self.start:%Y-%m-%d %H:%M} UTC "
            f"({self.campaigns} campaigns, a tick every {STEP.seconds // 3600} h): "
            f"{sent:,} messages sent",
            format_table(("campaign", "channel", "sent", "not sent"), self.by_campaign),
        ]
        if self.hours:
            peak = max(self.hours.values())
            lines.append("\nsent by local hour:")
            for hour in sorted(self.hours):
                bar = "█" * max(1, round(30 * self.hours[hour] / peak))
                lines.append(f"  {hour:02d}:00 {self.hours[hour]:>7,} {bar}")
        others = {s: n for s, n in self.states.items() if s not in ("sent",)}
        if others:
            shown = ", ".join(f"{n:,} {s}" for s, n in sorted(others.items()))
            lines.append(f"not sent: {shown} (see `narrowcast status` and `narrowcast report`)")
        if self.responses is not None:
            lines.append(self.responses.summary())
        if any(channel in ("in_app", "web") for _, channel, _, _ in self.by_campaign):
            lines.append(
                "in-app and web messages wait in the store: `narrowcast serve` serves them "
                "(GET /v1/inbox, /v1/web-messages and the /v1/narrowcast.js snippet)"
            )
        return "\n".join(lines)


def run_pipeline(settings: Settings, store: Store, now: datetime, seed: int = 0) -> PipelineReport:
    clock = FixedClock(now - timedelta(days=7))
    worker = Worker(settings, store, clock=clock)
    report = PipelineReport(now, campaigns=len(worker.library.campaigns))
    if not report.campaigns:
        return report
    snapshot(store, worker.library.definitions, now - timedelta(days=7))
    snapshot(store, worker.library.definitions, now)
    clock.at = now
    for _ in range(HOURS // int(STEP.total_seconds() // 3600) + 1):
        worker.tick()
        clock.advance(STEP)
    report.responses = respond(store, now, seed)
    with store.connect() as conn:
        o = outbox
        rows = conn.execute(
            select(o.c.campaign, o.c.channel, o.c.state, func.count())
            .where(o.c.channel.is_not(None))
            .group_by(o.c.campaign, o.c.channel, o.c.state)
        ).all()
        hour = json_property(events, "local_hour", "text")
        hours = conn.execute(
            select(hour, func.count())
            .where(events.c.type == "message_sent", events.c.ts >= now)
            .group_by(hour)
        ).all()
    totals: dict[tuple[str, str], list[int]] = {}
    for campaign, channel, state, n in rows:
        report.states[state] += n
        cell = totals.setdefault((campaign, channel), [0, 0])
        cell[0 if state == "sent" else 1] += n
    report.by_campaign = [(c, ch, s, o) for (c, ch), (s, o) in sorted(totals.items())]
    report.hours = Counter({int(h): n for h, n in hours if h is not None})
    return report
