"""``narrowcast run``: the long-running worker process.

APScheduler (3.x) is used only as an in-memory timer inside this process — its
job stores are never shared — and every decision that must be taken once goes
through the database (run keys, leases, advisory locks). The schedule:

* **plan** every ``[worker] plan_every`` (1 minute) and at each campaign's next
  scheduled instant;
* **housekeeping** (expired leases, overdue messages) every ``housekeeping_every``;
* **segment snapshots** every ``snapshot_every`` (one worker at a time);
* the **dispatch loop** runs continuously.

Signals: SIGTERM or SIGINT stops claiming, lets in-flight batches finish within
``grace``, and exits 0; a second one exits at once (the leases expire and
other workers, or the next start, pick the rows up). SIGHUP reloads the
campaign files (they are also reloaded when they change).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import (  # type: ignore[import-untyped]
    AsyncIOScheduler,
)

from narrowcast.campaigns.schedule import next_occurrence
from narrowcast.segments.language import parse_duration
from narrowcast.worker.worker import Worker

log = logging.getLogger("narrowcast.worker")
Serve = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""Serves HTTP in the same process until the event is set (``narrowcast run --http``)."""


class Daemon:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stopping = asyncio.Event()
        self._signals = 0
        self._scheduler: AsyncIOScheduler | None = None

    async def run(
        self, serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
    ) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        settings = self.worker.settings.worker
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self._scheduler = scheduler
        now = datetime.now(UTC)
        scheduler.add_job(
            self._plan,
            "interval",
            seconds=_seconds(settings.plan_every),
            next_run_time=now,
            id="plan",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._housekeep,
            "interval",
            seconds=_seconds(settings.housekeeping_every),
            next_run_time=now,
            id="housekeeping",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._snapshot,
            "interval",
            seconds=_seconds(settings.snapshot_every),
            id="snapshot",
            max_instances=1,
            coalesce=True,
        )
        # Every dispatch loop, planning, housekeeping and snapshots run database work
        # in threads: size the pool for all of them at once (the default is cores + 4).
        loops = sum(
            self.worker.settings.dispatch.limits(channel).concurrency
            for channel in self.worker.routes
        )
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(loops + 6, thread_name_prefix="narrowcast")
        )
        scheduler.start()
        log.info("worker %s started (pid %d)", self.worker.owner, os.getpid())
        async with self.worker.routes:
            tasks = [asyncio.create_task(self.worker.dispatcher.run(idle=1.0))]
            if serve is not None:
                tasks.append(asyncio.create_task(serve(self.stopping)))
            await self.stopping.wait()
            scheduler.shutdown(wait=False)
            self.worker.dispatcher.stopping.set()
            grace = _seconds(settings.grace)
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "in-flight work did not finish within %s; its leases will expire",
                    settings.grace,
                )
        log.info("worker %s stopped", self.worker.owner)
        return 0

    def _stop(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second %s: exiting at once", sig.name)
            os._exit(1)
        log.info("%s: stopping — finishing in-flight batches (again to exit at once)", sig.name)
        self.stopping.set()

    def _reload(self) -> None:
        changed = self.worker.library.reload(force=True)
        log.info("SIGHUP: campaigns reloaded%s", "" if changed else " (no change)")
        self.worker.template_folder.reload()
        self._schedule_next_occurrence()

    async def _plan(self) -> None:
        try:
            await asyncio.to_thread(self.worker.plan)
        except Exception:
            log.exception("planning failed; retrying at the next tick")
        self._schedule_next_occurrence()

    async def _housekeep(self) -> None:
        try:
            await asyncio.to_thread(self.worker.housekeep)
        except Exception:
            log.exception("housekeeping failed; retrying at the next tick")

    async def _snapshot(self) -> None:
        try:
            result = await asyncio.to_thread(self.worker.snapshot)
            log.info(result.summary())
        except Exception:
            log.exception("segment snapshot failed; retrying at the next tick")

    def _schedule_next_occurrence(self) -> None:
        """Wake the planner at the next cron / every / at instant of any campaign."""
        scheduler = self._scheduler
        if scheduler is None or self.stopping.is_set():
            return
        now = datetime.now(UTC)
        upcoming = [
            at
            for campaign in self.worker.library.campaigns.values()
            if campaign.enabled and not campaign.triggered
            for at in [next_occurrence(campaign, now)]
            if at is not None and at - now < timedelta(days=1)
        ]
        if upcoming:
            scheduler.add_job(
                self._plan,
                "date",
                run_date=min(upcoming) + timedelta(seconds=1),
                id="plan-at-occurrence",
                replace_existing=True,
            )


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()
