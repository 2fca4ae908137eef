"""What the results say about a segment: response per channel and per local send hour.

``channel = "auto"`` and ``send_time = "auto"`` choose from the message log:
the ``message_sent`` events narrowcast writes for every message it sends
(properties ``channel`` and ``local_hour``) and the responses that follow,
``message_clicked`` and ``message_converted``. A rate is responses per
message sent over the last ``engagement_days``, for the segment's members,
shrunk toward the all-customer rate with the weight of ``smoothing``
messages, so that a segment with a handful of sends does not swing::

    rate(segment, x) = (responses(segment, x) + m · rate(all, x)) / (sends(segment, x) + m)

Without any sends, the hour falls back to when the segment is active on its
own (its sessions and orders, in each customer's local time), and then to
the configured default hour. These are the planner's first, smoothed
choices; the optimisation work learns on top of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Select, func, literal, select

from narrowcast.segments.sql import UtcHour, json_property
from narrowcast.store.schema import Instant, customers, events

SENT = "message_sent"
RESPONSES = ("message_clicked", "message_converted")
ACTIVITY = ("session_start", "order")


@dataclass(frozen=True)
class Rates:
    """Smoothed response rates by key (a channel, or a local hour 0–23)."""

    rates: Mapping[object, float] = field(default_factory=dict)
    sends: Mapping[object, int] = field(default_factory=dict)
    responses: Mapping[object, int] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return sum(self.sends.values()) > 0


@dataclass(frozen=True)
class Engagement:
    """The numbers behind one campaign's ``auto`` choices, computed once per plan."""

    channels: Rates
    hours: Rates
    activity: Mapping[int, int]
    """Organic events (sessions, orders) of the audience by local hour."""

    def best_hour(self, default: int, allowed: list[int]) -> tuple[int, str]:
        """The hour to send at among ``allowed`` local hours, and why."""
        if self.hours.has_data:
            hour = max(allowed, key=lambda h: (self.hours.rates.get(h, 0.0), -h))
            return hour, "best response per message sent (smoothed)"
        if any(self.activity.get(h, 0) for h in allowed):
            hour = max(allowed, key=lambda h: (self.activity.get(h, 0), -h))
            return hour, "the segment's busiest allowed hour on its own (no sends yet)"
        return default, "the configured default hour (no data)"


def engagement(
    conn: Connection,
    audience: Select[tuple[str]],
    now: datetime,
    days: int,
    smoothing: float,
    default_zone: str,
) -> Engagement:
    """Rates for ``audience`` (``SELECT customer id``) against everyone, over ``days``."""
    since = now - timedelta(days=days)
    members = audience.subquery("audience")
    channel, hour = _counts(conn, members, since, now)
    return Engagement(
        channels=_rates(channel, smoothing),
        hours=_rates(hour, smoothing, key=_hour),
        activity=_activity(conn, members, since, now, default_zone),
    )


def _counts(
    conn: Connection, members: object, since: datetime, now: datetime
) -> tuple[dict[str, Counter[object]], dict[str, Counter[object]]]:
    """sends / responses, for the audience and for everyone, by channel and by local hour.

    One grouped pass over the message log for everyone, and one for the audience
    (whose members the database works out once, not once per count) — and none
    when nobody has any: the audience's messages are among everyone's.
    """
    e = events.alias("m")
    channel = json_property(e, "channel", "text")
    hour = json_property(e, "local_hour", "text")
    mine = e.c.customer_id.in_(select(members.c.id))  # type: ignore[attr-defined]
    window = [e.c.ts > literal(since, Instant), e.c.ts <= literal(now, Instant)]
    labels = ("sends", "responses", "all_sends", "all_responses")
    by_channel: dict[str, Counter[object]] = {label: Counter() for label in labels}
    by_hour: dict[str, Counter[object]] = {label: Counter() for label in labels}
    base = (
        select(e.c.type, channel, hour, func.count())
        .where(e.c.type.in_([SENT, *RESPONSES]), *window)
        .group_by(e.c.type, channel, hour)
    )
    for prefix, query in (("all_", base), ("", base.where(mine))):
        found = 0
        for kind, ch, h, n in conn.execute(query):
            label = prefix + ("sends" if kind == SENT else "responses")
            by_channel[label][ch] += n
            by_hour[label][h] += n
            found += n
        if not found:
            break
    return by_channel, by_hour


def _rates(counts: Mapping[str, Counter[object]], smoothing: float, key: object = None) -> Rates:
    normal = key if callable(key) else (lambda k: k)
    sends = _normalised(counts["sends"], normal)
    responses = _normalised(counts["responses"], normal)
    all_sends = _normalised(counts["all_sends"], normal)
    all_responses = _normalised(counts["all_responses"], normal)
    rates = {}
    for k in set(all_sends) | set(sends):
        everyone = all_responses.get(k, 0) / all_sends[k] if all_sends.get(k) else 0.0
        rates[k] = (responses.get(k, 0) + smoothing * everyone) / (sends.get(k, 0) + smoothing)
    return Rates(rates, sends, responses)


def _normalised(counter: Counter[object], normal: object) -> dict[object, int]:
    out: Counter[object] = Counter()
    for k, n in counter.items():
        converted = normal(k)  # type: ignore[operator]
        if converted is not None:
            out[converted] += n
    return dict(out)


def _hour(value: object) -> int | None:
    try:
        hour = int(str(value))
    except ValueError:
        return None
    return hour if 0 <= hour < 24 else None


def _activity(
    conn: Connection, members: object, since: datetime, now: datetime, default_zone: str
) -> dict[int, int]:
    """Sessions and orders of the audience per local hour (UTC hour buckets, converted)."""
    e = events.alias("a")
    zone = func.coalesce(customers.c.timezone, literal(default_zone))
    bucket = UtcHour(e.c.ts)  # 'YYYY-MM-DD HH'
    query = (
        select(zone, bucket, func.count())
        .select_from(e.join(customers, customers.c.id == e.c.customer_id))
        .where(
            e.c.type.in_(ACTIVITY),
            e.c.ts > literal(since, Instant),
            e.c.ts <= literal(now, Instant),
            e.c.customer_id.in_(select(members.c.id)),  # type: ignore[attr-defined]
        )
        .group_by(zone, bucket)
    )
    hours: Counter[int] = Counter()
    zones: dict[str, ZoneInfo] = {}
    for name, stamp, n in conn.execute(query):
        tz = zones.get(name)
        if tz is None:
            try:
                tz = zones.setdefault(name, ZoneInfo(name))
            except (ZoneInfoNotFoundError, ValueError):
                tz = zones.setdefault(name, ZoneInfo("UTC"))
        utc = datetime.fromisoformat(f"{stamp}:00:00+00:00")
        hours[utc.astimezone(tz).hour] += n
    return dict(hours)
