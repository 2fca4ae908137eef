"""The result log as trials: every message sent, and whether it was rewarded.

A trial is an outbox row in state ``sent``. Its reward is a click on that
message (``message_clicked`` with its ``outbox_id``) or the campaign's goal
event within the campaign's attribution window after sending. Opens are not a
reward: machine opens (Apple Mail privacy protection) make them noise.

A trial counts only once its attribution window has closed: counting a
message sent an hour ago as "no response" would make the hours and channels
used most recently look worst. Each trial is weighted by its age (the weight
halves every ``half_life_days``) and placed at the customer's local hour of
sending, so the models learn response *given* the send hour — not the hours
people happen to open at, which mostly repeat the hours they were sent at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import ColumnElement, Connection, Select, and_, case, exists, literal, or_, select

from narrowcast.optimize.beta import Array
from narrowcast.planning.settings import LearningSettings
from narrowcast.segments.language import parse_duration
from narrowcast.segments.sql import PlusInterval, json_property
from narrowcast.store.schema import Instant, customers, events, outbox

CLICK = "message_clicked"
DEFAULT_WINDOW = "7d"
"""The window of messages whose campaign is no longer in the library."""


@dataclass(frozen=True)
class Goal:
    """What rewards a campaign's message: a click, or ``event`` within ``window``."""

    event: str | None
    window: timedelta


@dataclass
class Counts:
    """Age-weighted sends and responses by (channel, local hour)."""

    sends: Array
    responses: Array

    @classmethod
    def empty(cls, channels: int) -> Counts:
        return cls(np.zeros((channels, 24)), np.zeros((channels, 24)))

    @property
    def total(self) -> float:
        return float(self.sends.sum())


@dataclass
class TrialLog:
    """Trials for everyone, for an audience, and per audience member."""

    channels: tuple[str, ...]
    everyone: Counts
    audience: Counts
    customers: dict[str, Counts] = field(default_factory=dict)
    """Only audience members with at least one trial."""
    messages: dict[str, int] = field(default_factory=dict)
    """Unweighted number of trials per audience member (the minimum-data rule)."""

    def channel_index(self, channel: str) -> int | None:
        try:
            return self.channels.index(channel)
        except ValueError:
            return None


def read_trials(
    conn: Connection,
    audience: Select[tuple[str]],
    goals: Mapping[str, Goal],
    channels: tuple[str, ...],
    now: datetime,
    settings: LearningSettings,
    default_zone: str,
) -> TrialLog:
    """All closed trials of the last ``history_days``, with the audience's broken out.

    ``goals`` maps each campaign in the library to what rewards its messages;
    messages of campaigns no longer there are rewarded by clicks within
    ``DEFAULT_WINDOW``.
    """
    log = TrialLog(channels, Counts.empty(len(channels)), Counts.empty(len(channels)))
    since = now - timedelta(days=settings.history_days)
    members = audience.subquery("learning_audience")
    zones: dict[str, ZoneInfo] = {}
    hours: dict[tuple[str, datetime], int] = {}
    index = {ch: i for i, ch in enumerate(channels)}
    retired = Goal(None, parse_duration(DEFAULT_WINDOW))
    queries = [_query(members, name, goal, since, now) for name, goal in goals.items()]
    queries.append(_query(members, None, retired, since, now, exclude=tuple(goals)))
    half_life = settings.half_life_days
    for query in queries:
        for customer_id, channel, sent_at, zone_name, mine, rewarded in conn.execute(query):
            ch = index.get(channel)
            if ch is None:
                continue
            utc = sent_at.astimezone(UTC)
            zone_name = zone_name or default_zone
            hour_key = (zone_name, utc.replace(minute=0, second=0, microsecond=0))
            hour = hours.get(hour_key)
            if hour is None:
                hour = hours[hour_key] = utc.astimezone(_zone(zones, zone_name)).hour
            age = (now - utc).total_seconds() / 86400.0
            weight = 0.5 ** (max(age, 0.0) / half_life)  # beta.decay, for one trial
            reward = weight if rewarded else 0.0
            log.everyone.sends[ch, hour] += weight
            log.everyone.responses[ch, hour] += reward
            if mine:
                log.audience.sends[ch, hour] += weight
                log.audience.responses[ch, hour] += reward
                own = log.customers.get(customer_id)
                if own is None:
                    own = log.customers[customer_id] = Counts.empty(len(channels))
                own.sends[ch, hour] += weight
                own.responses[ch, hour] += reward
                log.messages[customer_id] = log.messages.get(customer_id, 0) + 1
    return log


def _query(
    members: object,
    campaign: str | None,
    goal: Goal,
    since: datetime,
    now: datetime,
    exclude: tuple[str, ...] = (),
) -> Select[Any]:
    o = outbox
    seconds = literal(goal.window.total_seconds())
    click = events.alias("click")
    clicked = exists().where(
        click.c.type == CLICK,
        click.c.customer_id == o.c.customer_id,
        click.c.ts >= o.c.sent_at,
        click.c.ts <= PlusInterval(o.c.sent_at, seconds),
        json_property(click, "outbox_id", "number") == o.c.id,
    )
    reward: ColumnElement[bool] = clicked
    if goal.event is not None:
        g = events.alias("goal")
        converted = exists().where(
            g.c.type == goal.event,
            g.c.customer_id == o.c.customer_id,
            g.c.ts > o.c.sent_at,
            g.c.ts <= PlusInterval(o.c.sent_at, seconds),
        )
        reward = or_(clicked, converted)
    mine = case((o.c.customer_id.in_(select(members.c.id)), 1), else_=0)  # type: ignore[attr-defined]
    where = [
        o.c.state == "sent",
        o.c.sent_at > literal(since, Instant),
        o.c.sent_at <= literal(now - goal.window, Instant),
    ]
    where.append(o.c.campaign == campaign if campaign is not None else o.c.campaign.not_in(exclude))
    return (
        select(o.c.customer_id, o.c.channel, o.c.sent_at, customers.c.timezone, mine, reward)
        .select_from(o.join(customers, customers.c.id == o.c.customer_id))
        .where(and_(*where))
    )


def _zone(cache: dict[str, ZoneInfo], name: str) -> ZoneInfo:
    zone = cache.get(name)
    if zone is None:
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        cache[name] = zone
    return zone


__all__ = ["CLICK", "Counts", "Goal", "TrialLog", "read_trials"]
