"""One worker: plans due campaigns, sweeps leases, and sends — once (``tick``) or for ever.

Every worker runs this same code against the same database; they share the
work only through it (unique run and outbox keys, leases, advisory locks), so
adding a worker is starting another process. See ``daemon.py`` for the
long-running process and its schedule.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from narrowcast.channels.base import ChannelContext
from narrowcast.channels.routes import Routes, build_routes
from narrowcast.config import Settings
from narrowcast.dispatch.clock import Clock, DatabaseClock
from narrowcast.dispatch.dispatcher import Dispatcher, DispatchStats
from narrowcast.dispatch.outbox import Outbox
from narrowcast.render.renderer import Renderer
from narrowcast.segments.language import parse_duration
from narrowcast.segments.membership import Snapshot, snapshot
from narrowcast.store import Store
from narrowcast.worker.library import CampaignLibrary, TemplateFolder
from narrowcast.worker.runs import RunResult, plan_due

log = logging.getLogger("narrowcast.worker")


@dataclass
class TickReport:
    at: datetime
    runs: list[RunResult] = field(default_factory=list)
    requeued: int = 0
    unknown: int = 0
    expired: int = 0
    sent: DispatchStats | None = None

    def summary(self) -> str:
        planned = sum(r.planned for r in self.runs)
        lines = [
            f"tick at {self.at:%Y-%m-%d %H:%M:%S} UTC: {len(self.runs)} run(s) planned "
            f"{planned:,} message(s)"
        ]
        for run in self.runs:
            state = (
                f"error: {run.error}"
                if run.error
                else (f"{run.planned:,} planned, {run.holdout:,} holdout, {run.written:,} new rows")
            )
            lines.append(f"  {run.campaign} {run.key}: {state}")
        if self.requeued or self.unknown or self.expired:
            lines.append(
                f"housekeeping: {self.requeued} requeued, {self.unknown} unknown, "
                f"{self.expired} expired"
            )
        if self.sent is not None:
            for channel, counts in sorted(self.sent.states.items()):
                shown = ", ".join(f"{n:,} {state}" for state, n in sorted(counts.items()))
                lines.append(f"  {channel}: {shown}")
        return "\n".join(lines)


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        routes: Routes | None = None,
        root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock or DatabaseClock(store)
        self.outbox = Outbox(store, self.owner)
        self.library = CampaignLibrary(settings.campaigns.dir, tuple(settings.channels.routes()))
        self.library.reload(force=True)
        # Read the link secret now: a missing variable is reported at start-up.
        self.renderer = Renderer.from_settings(settings, settings.campaigns.templates)
        self.template_folder = TemplateFolder(self.renderer.templates)
        self.template_folder.reload()
        folder = root or (settings.source.parent if settings.source else Path.cwd())
        context = ChannelContext(
            store=store, config_file=settings.source, root=folder, clock=self.clock.now
        )
        self.routes = routes or build_routes(settings.channels, context)
        self.dispatcher = Dispatcher(
            store,
            self.outbox,
            self.routes,
            settings,
            self.renderer,
            lambda: self.library.campaigns,
            lambda: self.library.definitions,
            self.clock,
        )

    def plan(self) -> list[RunResult]:
        self.library.reload()
        self.template_folder.reload()
        return plan_due(
            self.store,
            self.outbox,
            self.settings.planning,
            self.library.campaigns,
            self.library.definitions,
            self.clock.now(),
            parse_duration(self.settings.worker.stale_plan),
        )

    def housekeep(self) -> tuple[int, int, int]:
        now = self.clock.now()
        requeued, unknown = self.outbox.release_expired_leases(now)
        expired = self.outbox.expire_overdue(now)
        if requeued or unknown or expired:
            log.info(
                "housekeeping: %d requeued, %d unknown, %d expired", requeued, unknown, expired
            )
        return requeued, unknown, expired

    def snapshot(self) -> Snapshot:
        return snapshot(self.store, self.library.definitions, self.clock.now())

    async def tick_async(self) -> TickReport:
        report = TickReport(self.clock.now())
        report.runs = await asyncio.to_thread(self.plan)
        report.requeued, report.unknown, report.expired = await asyncio.to_thread(self.housekeep)
        async with self.routes:
            report.sent = await self.dispatcher.drain()
        return report

    def tick(self) -> TickReport:
        """One planning, housekeeping and dispatch pass, then return."""
        return asyncio.run(self.tick_async())
