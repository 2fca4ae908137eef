"""Planning due campaigns into the outbox: one run per occurrence, never twice.

Every scheduled occurrence (a cron instant, an ``every`` multiple, the ``at``
instant) becomes a run keyed ``(campaign, ISO instant)``; creating it is an
insert that does nothing when the key exists, so whichever worker creates it
plans it and nobody else does — after a restart too. Occurrences missed while
no worker ran are planned late only while their messages could still go out
(within the campaign's ``expires``); older ones are skipped.

A trigger campaign (``on_event``, ``on_enter``) gets a run per planning pass
covering the triggers since its previous run. On PostgreSQL an advisory lock
per campaign makes those passes take turns across workers, so windows never
overlap; outbox rows are keyed per trigger anyway.

A run left in ``planning`` by a worker that died is taken over after
``STALE`` and planned again: entries already written are skipped by their
keys, so the run ends complete, with nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from narrowcast.campaigns.model import Campaign
from narrowcast.campaigns.schedule import occurrences
from narrowcast.dispatch.outbox import Outbox
from narrowcast.optimize.learner import goals_of
from narrowcast.optimize.trials import Goal
from narrowcast.planning.planner import PlanEntry, Planner
from narrowcast.planning.settings import PlanningSettings
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.errors import RuleError
from narrowcast.segments.language import parse_duration
from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs

log = logging.getLogger("narrowcast.worker")
STALE = timedelta(minutes=10)


@dataclass(frozen=True)
class RunResult:
    campaign: str
    key: str
    planned: int
    holdout: int
    written: int
    error: str | None = None


def plan_due(
    store: Store,
    outbox: Outbox,
    planning: PlanningSettings,
    campaigns: Mapping[str, Campaign],
    definitions: Definitions,
    now: datetime,
    stale: timedelta = STALE,
) -> list[RunResult]:
    """Plan every enabled campaign's due occurrences and new triggers as of ``now``."""
    results = []
    goals = goals_of(campaigns)
    for campaign in campaigns.values():
        if not campaign.enabled:
            continue
        try:
            if campaign.triggered:
                results += _plan_triggers(
                    store, outbox, planning, campaign, definitions, now, goals
                )
            else:
                results += _plan_scheduled(
                    store, outbox, planning, campaign, definitions, now, stale, goals
                )
        except RuleError as exc:
            # A campaign whose audience no longer checks (a segment was removed) must
            # not stop the others; validate says what to fix.
            log.error(
                "campaign %s not planned: %s",
                campaign.name,
                exc.message,
                extra={"campaign": campaign.name},
            )
            results.append(RunResult(campaign.name, "", 0, 0, 0, str(exc.message)))
    return results


def _plan_scheduled(
    store: Store,
    outbox: Outbox,
    planning: PlanningSettings,
    campaign: Campaign,
    definitions: Definitions,
    now: datetime,
    stale: timedelta,
    goals: Mapping[str, Goal],
) -> list[RunResult]:
    catch_up = parse_duration(campaign.expires)
    results = []
    for occurrence in occurrences(campaign, now - catch_up, now):
        key = occurrence.isoformat()
        run = outbox.open_run(campaign.name, key, "scheduled", occurrence, now)
        if run is None:
            run = outbox.resume_run(campaign.name, key, now, stale)
            if run is None:
                continue  # planned already, here or by another worker
        results.append(
            _plan(
                store,
                outbox,
                planning,
                campaign,
                definitions,
                now,
                run,
                key,
                goals,
                occurrence=occurrence,
            )
        )
    return results


def _plan_triggers(
    store: Store,
    outbox: Outbox,
    planning: PlanningSettings,
    campaign: Campaign,
    definitions: Definitions,
    now: datetime,
    goals: Mapping[str, Goal],
) -> list[RunResult]:
    with _campaign_lock(store, campaign.name):
        since = _last_trigger_run(store, campaign.name) or now - parse_duration(campaign.expires)
        if since >= now:
            return []
        key = f"trigger:{now.isoformat()}"
        run = outbox.open_run(campaign.name, key, "trigger", now, now)
        if run is None:
            return []
        return [
            _plan(store, outbox, planning, campaign, definitions, now, run, key, goals, since=since)
        ]


def _plan(
    store: Store,
    outbox: Outbox,
    planning: PlanningSettings,
    campaign: Campaign,
    definitions: Definitions,
    now: datetime,
    run: int,
    key: str,
    goals: Mapping[str, Goal],
    *,
    occurrence: datetime | None = None,
    since: datetime | None = None,
) -> RunResult:
    with store.connect() as conn:
        planner = Planner(conn, definitions, planning, now, goals=goals)
        plan = planner.plan(campaign, occurrence=occurrence, since=since)
        entries = (entry for entry in plan if isinstance(entry, PlanEntry))
        try:
            written = outbox.write(
                run, campaign.name, campaign.purpose, campaign.priority, entries, now
            )
        except Exception as exc:
            outbox.finish_run(run, plan.summary, now, error=f"{type(exc).__name__}: {exc}")
            raise
    outbox.finish_run(run, plan.summary, now)
    summary = plan.summary
    log.info(
        "planned %s %s: %d messages, %d holdout, %d new rows",
        campaign.name,
        key,
        summary.planned,
        summary.counts["holdout"],
        written,
        extra={"campaign": campaign.name, "run": run},
    )
    return RunResult(campaign.name, key, summary.planned, summary.counts["holdout"], written)


@contextmanager
def _campaign_lock(store: Store, name: str) -> Iterator[None]:
    """On PostgreSQL, one worker at a time plans this campaign's triggers.

    SQLite runs one worker (its writes are serialised anyway), and holding a
    write transaction here would block the planning's own writes.
    """
    if store.dialect != "postgresql":
        yield
        return
    with store.begin() as lock:
        lock.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_key(name)})")
        yield


def _last_trigger_run(store: Store, campaign: str) -> datetime | None:
    with store.connect() as conn:
        value = conn.execute(
            select(func.max(campaign_runs.c.occurrence)).where(
                campaign_runs.c.campaign == campaign,
                campaign_runs.c.kind == "trigger",
                campaign_runs.c.state == "planned",
            )
        ).scalar_one()
    return value if isinstance(value, datetime) else None


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"narrowcast-triggers:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
