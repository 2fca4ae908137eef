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

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    Select,
    and_,
    case,
    exists,
    literal,
    or_,
    select,
)

from narrowcast.optimize.beta import Array, decay
from narrowcast.planning.settings import LearningSettings
from narrowcast.segments.language import parse_duration
from narrowcast.segments.sql import PlusInterval, json_property
from narrowcast.store.schema import Instant, customers, events, outbox
from narrowcast.timezones import Zones

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
    """Trials for everyone, for an audience, and per audience member.

    Per member the trials are kept pooled two ways — by hour over channels and by
    channel over hours — in arrays with one row per member who has any, which is
    all the send-time and channel models read.
    """

    channels: tuple[str, ...]
    everyone: Counts
    audience: Counts
    rows: dict[str, int] = field(default_factory=dict)
    """Row of each audience member with at least one trial."""
    hour_sends: Array = field(default_factory=lambda: np.zeros((0, 24)))
    hour_responses: Array = field(default_factory=lambda: np.zeros((0, 24)))
    channel_sends: Array = field(default_factory=lambda: np.zeros((0, 0)))
    channel_responses: Array = field(default_factory=lambda: np.zeros((0, 0)))
    messages: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Unweighted number of trials per member (the minimum-data rule)."""

    def messages_of(self, customer_id: str) -> int:
        row = self.rows.get(customer_id)
        return 0 if row is None else int(self.messages[row])

    def experienced(self, minimum: int) -> list[str]:
        """Members with at least ``minimum`` trials, in a stable order."""
        return sorted(c for c, row in self.rows.items() if self.messages[row] >= minimum)


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
    zones = Zones(default_zone)
    hours: dict[tuple[str | None, datetime], int] = {}
    index = {ch: i for i, ch in enumerate(channels)}
    retired = Goal(None, parse_duration(DEFAULT_WINDOW))
    queries = [_query(members, name, goal, since, now) for name, goal in goals.items()]
    queries.append(_query(members, None, retired, since, now, exclude=tuple(goals)))
    rows = log.rows
    # One entry per trial; the arithmetic happens on the arrays once every row is read.
    who: list[int] = []
    """The trial's member row in ``log.rows``, or -1 outside the audience."""
    channel_of: list[int] = []
    hour_of: list[int] = []
    ages: list[float] = []
    rewarded_of: list[bool] = []
    for query in queries:
        for customer_id, channel, sent_at, zone_name, mine, rewarded in conn.execute(query):
            ch = index.get(channel)
            if ch is None:
                continue
            utc = sent_at.astimezone(UTC)
            hour_key = (zone_name, utc.replace(minute=0, second=0, microsecond=0))
            hour = hours.get(hour_key)
            if hour is None:
                hour = hours[hour_key] = utc.astimezone(zones(zone_name)).hour
            row = -1
            if mine:
                row = rows.get(customer_id, -1)
                if row < 0:
                    row = rows[customer_id] = len(rows)
            who.append(row)
            channel_of.append(ch)
            hour_of.append(hour)
            ages.append((now - utc).total_seconds() / 86400.0)
            rewarded_of.append(bool(rewarded))
    weights = decay(np.array(ages), settings.half_life_days)
    rewards = np.where(np.array(rewarded_of, dtype=bool), weights, 0.0)
    channel = np.array(channel_of, dtype=np.intp)
    hour_index = np.array(hour_of, dtype=np.intp)
    np.add.at(log.everyone.sends, (channel, hour_index), weights)
    np.add.at(log.everyone.responses, (channel, hour_index), rewards)
    inside = np.array(who, dtype=np.intp) >= 0
    member = np.array(who, dtype=np.intp)[inside]
    channel, hour_index = channel[inside], hour_index[inside]
    weights, rewards = weights[inside], rewards[inside]
    np.add.at(log.audience.sends, (channel, hour_index), weights)
    np.add.at(log.audience.responses, (channel, hour_index), rewards)
    by_hour = (member, hour_index)
    by_channel = (member, channel)
    size = len(rows)
    log.hour_sends, log.hour_responses = np.zeros((size, 24)), np.zeros((size, 24))
    log.channel_sends = np.zeros((size, len(channels)))
    log.channel_responses = np.zeros((size, len(channels)))
    np.add.at(log.hour_sends, by_hour, weights)
    np.add.at(log.hour_responses, by_hour, rewards)
    np.add.at(log.channel_sends, by_channel, weights)
    np.add.at(log.channel_responses, by_channel, rewards)
    log.messages = np.bincount(member, minlength=size).astype(np.int64)
    return log


def goal_after(
    event: str, window: timedelta, customer: ColumnElement[Any], after: ColumnElement[Any]
) -> tuple[Any, ColumnElement[bool]]:
    """The ``event`` rows of ``customer`` in (``after``, ``after`` + ``window``]: an alias
    of ``events`` and the condition on it, for an EXISTS or a sum of their values."""
    g = events.alias("goal")
    condition = and_(
        g.c.type == event,
        g.c.customer_id == customer,
        g.c.ts > after,
        g.c.ts <= PlusInterval(after, literal(window.total_seconds())),
    )
    return g, condition


def reached(event: str, window: timedelta) -> Exists:
    """Whether the customer of an outbox row had ``event`` within ``window`` after it was sent."""
    _, condition = goal_after(event, window, outbox.c.customer_id, outbox.c.sent_at)
    return exists().where(condition)


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
        reward = or_(clicked, reached(goal.event, goal.window))
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


__all__ = ["CLICK", "Counts", "Goal", "TrialLog", "goal_after", "reached", "read_trials"]
