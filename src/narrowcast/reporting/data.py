"""The numbers behind the charts, read from the store in a few grouped queries each.

Every function takes a connection and answers one question about what the
campaigns did; nothing here draws or formats. ``since`` limits each question
to what happened from that instant on (sends, snapshots, planned rows).

* segment sizes over time — ``segment_evaluations`` (one row per segment per
  snapshot, see ``segments/membership.py``);
* the flow between segments — ``membership.flow`` between the first and the
  last snapshot of the period;
* response per local send hour — every ``message_sent`` event (its
  ``local_hour`` property), and whether a response followed: a
  ``message_clicked`` event for the same ``outbox_id``, or the campaign's goal
  event within its attribution window after the send. Opens are not a
  response (machine opens would count);
* channel mix and engagement — ``message_sent`` per channel, and the share of
  those messages with a delivery, an open (``message_opened`` only: machine
  opens have their own type) and a click;
* variant allocation — outbox rows per arm per UTC day of ``created_at``;
* uplift — the treated-vs-holdout comparison of ``narrowcast report``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, literal, or_, select
from sqlalchemy.sql.selectable import NamedFromClause

from narrowcast.campaigns.model import Campaign
from narrowcast.optimize.trials import goal_after
from narrowcast.segments.language import parse_duration
from narrowcast.segments.membership import Flow, flow, snapshot_instants
from narrowcast.segments.sql import UtcDay, json_property
from narrowcast.store.schema import Instant, events, outbox, segment_evaluations
from narrowcast.worker.report import Comparison
from narrowcast.worker.report import report as campaign_report

SENT = "message_sent"
CLICKED = "message_clicked"
ENGAGEMENT = (
    ("delivered", "message_delivered"),
    ("opened", "message_opened"),
    ("clicked", "message_clicked"),
)
HOLDOUT_ARM = "holdout"
CONTROL_ARM = "control"
DEFAULT_ARM = "(single)"


@dataclass(frozen=True)
class HourlyResponse:
    """Messages sent and responded to, per local send hour (0–23), for one segment."""

    segment: str
    campaigns: tuple[str, ...]
    sends: tuple[int, ...]
    responses: tuple[int, ...]

    @property
    def total_sends(self) -> int:
        return sum(self.sends)

    @property
    def total_responses(self) -> int:
        return sum(self.responses)

    @property
    def overall_rate(self) -> float:
        return self.total_responses / self.total_sends if self.total_sends else 0.0


@dataclass(frozen=True)
class ChannelEngagement:
    channel: str
    sent: int
    delivered: int
    opened: int
    clicked: int

    def rate(self, kind: str) -> float:
        count: int = getattr(self, kind)
        return count / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Allocation:
    """Outbox rows of one campaign per arm (variant, or the holdout) per day."""

    campaign: str
    days: tuple[date, ...]
    arms: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """arm → rows per day, aligned with ``days``."""


def segment_sizes(
    conn: Connection, since: datetime | None = None
) -> dict[str, list[tuple[datetime, int]]]:
    """segment → (snapshot instant, size), oldest first."""
    s = segment_evaluations
    query = select(s.c.segment, s.c.evaluated_at, s.c.size).order_by(s.c.segment, s.c.evaluated_at)
    if since is not None:
        query = query.where(s.c.evaluated_at >= literal(since, Instant))
    sizes: dict[str, list[tuple[datetime, int]]] = {}
    for segment, at, size in conn.execute(query):
        sizes.setdefault(segment, []).append((at, int(size)))
    return sizes


def segment_flow(conn: Connection, since: datetime | None = None) -> Flow | None:
    """Who moved between segments from the first snapshot of the period to the last.

    None when the period has fewer than two snapshot instants: nothing can have moved.
    """
    instants = [at for at in snapshot_instants(conn) if since is None or at >= since]
    if len(instants) < 2:
        return None
    return flow(conn, instants[0], instants[-1])


def audience_label(campaign: Campaign | None, name: str) -> str:
    """The segment a campaign's messages are counted under in the per-segment charts."""
    if campaign is None:
        return f"campaign {name}"
    return campaign.segment or campaign.on_enter or f"campaign {name}"


def hourly_response(
    conn: Connection,
    campaigns: Mapping[str, Campaign],
    since: datetime | None = None,
    only: str | None = None,
) -> list[HourlyResponse]:
    """Sends and responses per local send hour, per audience segment, largest first."""
    sends: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    responses: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    members: dict[str, set[str]] = defaultdict(set)
    s = events.alias("sent")
    hour = json_property(s, "local_hour", "text")
    name = json_property(s, "campaign", "text")
    where = [s.c.type == SENT]
    if since is not None:
        where.append(s.c.ts >= literal(since, Instant))
    names = [only] if only else sorted(campaigns)
    for campaign_name in names:
        campaign = campaigns.get(campaign_name)
        responded = _responded(s, campaign)
        label = audience_label(campaign, campaign_name)
        rows = conn.execute(
            select(hour, func.count(), func.count().filter(responded))
            .where(*where, name == campaign_name)
            .group_by(hour)
        )
        for local_hour, n, r in rows:
            h = _hour(local_hour)
            if h is None:
                continue
            sends[label][h] += int(n)
            responses[label][h] += int(r)
            members[label].add(campaign_name)
    found = [
        HourlyResponse(
            label, tuple(sorted(members[label])), tuple(sends[label]), tuple(responses[label])
        )
        for label in sends
        if sum(sends[label])
    ]
    return sorted(found, key=lambda h: (-h.total_sends, h.segment))


def _responded(s: NamedFromClause, campaign: Campaign | None) -> ColumnElement[bool]:
    """A click on the sent message, or the campaign's goal within its attribution window."""
    c = events.alias("click")
    clicked = exists().where(
        c.c.type == CLICKED,
        c.c.customer_id == s.c.customer_id,
        json_property(c, "outbox_id", "number") == json_property(s, "outbox_id", "number"),
    )
    if campaign is None or campaign.goal is None:
        return clicked
    window = parse_duration(campaign.attribution_window)
    _, converted = goal_after(campaign.goal, window, s.c.customer_id, s.c.ts)
    return or_(clicked, exists().where(converted))


def _hour(value: object) -> int | None:
    try:
        hour = int(str(value))
    except ValueError:
        return None
    return hour if 0 <= hour < 24 else None


def channel_engagement(
    conn: Connection, since: datetime | None = None, only: str | None = None
) -> list[ChannelEngagement]:
    """Messages sent per channel and how many were delivered, opened, clicked; most sent first."""
    s = events.alias("sent")
    channel = json_property(s, "channel", "text")
    where = [s.c.type == SENT]
    if since is not None:
        where.append(s.c.ts >= literal(since, Instant))
    if only is not None:
        where.append(json_property(s, "campaign", "text") == only)
    counts = []
    for kind, event_type in ENGAGEMENT:
        e = events.alias(kind)
        condition = [
            e.c.type == event_type,
            e.c.customer_id == s.c.customer_id,
            json_property(e, "outbox_id", "number") == json_property(s, "outbox_id", "number"),
        ]
        if kind == "opened":  # older rows flagged a machine open by a property
            condition.append(func.coalesce(json_property(e, "machine", "bool"), False).is_(False))
        counts.append(func.count().filter(exists().where(*condition)))
    rows = conn.execute(
        select(channel, func.count(), *counts).where(*where).group_by(channel)
    ).all()
    found = [
        ChannelEngagement(str(ch), int(n), int(d), int(o), int(c))
        for ch, n, d, o, c in rows
        if ch is not None
    ]
    return sorted(found, key=lambda c: (-c.sent, c.channel))


def variant_allocation(
    conn: Connection, since: datetime | None = None, only: str | None = None
) -> list[Allocation]:
    """Rows per arm per day, for the campaigns with more than one arm (variants or a holdout)."""
    o = outbox
    day = UtcDay(o.c.created_at)
    arm = func.coalesce(o.c.variant, literal(DEFAULT_ARM))
    # The global control group ("control") and a campaign's holdout are told apart.
    held_out = case(
        (o.c.assignment == CONTROL_ARM, literal(CONTROL_ARM)),
        (or_(o.c.state == "holdout", o.c.assignment == HOLDOUT_ARM), literal(HOLDOUT_ARM)),
        else_=literal(""),
    )
    where = []
    if since is not None:
        where.append(o.c.created_at >= literal(since, Instant))
    if only is not None:
        where.append(o.c.campaign == only)
    rows = conn.execute(
        select(o.c.campaign, day, arm, held_out, func.count())
        .where(*where)
        .group_by(o.c.campaign, day, arm, held_out)
    ).all()
    cells: dict[str, dict[tuple[date, str], int]] = defaultdict(lambda: defaultdict(int))
    for campaign, when, variant, group, n in rows:
        name = str(group) if group else str(variant)
        cells[campaign][(_as_date(when), name)] += int(n)
    found = []
    for campaign, counted in sorted(cells.items()):
        arms = sorted({a for _, a in counted}, key=lambda a: (a in (HOLDOUT_ARM, CONTROL_ARM), a))
        if len(arms) < 2:
            continue
        days = tuple(sorted({d for d, _ in counted}))
        found.append(
            Allocation(
                campaign,
                days,
                {a: tuple(counted.get((d, a), 0) for d in days) for a in arms},
            )
        )
    return found


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def uplift(
    conn: Connection,
    campaigns: Mapping[str, Campaign],
    since: datetime | None = None,
    only: str | None = None,
) -> dict[str, Comparison]:
    """Treated vs holdout conversion per campaign with a goal (``narrowcast report``'s numbers)."""
    return dict(campaign_report(conn, campaigns, since, only).holdouts)


def sends_since(conn: Connection, since: datetime | None = None) -> int:
    """How many messages were sent in the period (the report's headline number)."""
    where = [events.c.type == SENT]
    if since is not None:
        where.append(events.c.ts >= literal(since, Instant))
    return int(conn.execute(select(func.count()).where(and_(*where))).scalar_one())
