"""Everything the planner needs to know about each audience member, in one query.

For a campaign's audience the planner reads, per customer: contact points
(email address, a valid push token, the latest app and web sessions), the
consent for the campaign's purpose on each channel, whether the email address
is suppressed, how many messages the customer already has in the frequency
windows, and when this campaign last reached them — all in one ``SELECT``,
streamed in batches, so planning a million customers keeps a flat memory.

Consent rules (documented in the README):

* marketing email and push need consent granted for ``marketing``;
  transactional messages need none, unless the customer refused
  ``transactional`` on that channel;
* in-app and web messages are shown in the shop's own app or site: they need
  a recent session there (an app session is a ``session_start`` whose
  ``platform`` or ``device`` is ``ios``, ``android`` or ``app``; any other is a
  web session) and no refusal;
* webhook messages go to the shop's own systems and need nothing;
* every suppression (unsubscribed, bounce, complaint) blocks marketing
  email; only bounces and complaints block transactional email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
)

from narrowcast.campaigns.model import Campaign, reentry_period
from narrowcast.planning.settings import PlanningSettings
from narrowcast.segments.language import parse_duration
from narrowcast.segments.sql import json_property
from narrowcast.store.schema import (
    Instant,
    consents,
    customers,
    device_tokens,
    events,
    outbox,
    suppressions,
)

APP_DEVICES = ("ios", "android", "app")
PENDING_OR_SENT = ("planned", "claimed", "sending", "sent", "retry", "unknown")
RECEIVED = (*PENDING_OR_SENT, "holdout")
_CONSENTED = ("email", "push", "in_app", "web")


@dataclass(frozen=True, slots=True)
class Facts:
    customer_id: str
    email: str | None
    timezone: str | None
    locale: str | None
    consent: dict[str, bool | None]
    """channel → granted (True), refused (False) or never asked (None)."""
    email_suppressed: bool
    push_token: bool
    last_app: datetime | None
    last_web: datetime | None
    sent_day: int
    sent_week: int
    sent_day_by_channel: dict[str, int]
    sent_week_by_channel: dict[str, int]
    last_received: datetime | None
    """When this campaign last planned a message (or a holdout) for the customer."""
    trigger_at: datetime | None = None


def facts_query(
    audience: Select[Any],
    campaign: Campaign,
    settings: PlanningSettings,
    now: datetime,
    channels: tuple[str, ...],
    *,
    small: bool = False,
) -> Select[Any]:
    """``SELECT`` of every fact above for each id of ``audience`` (``id``, ``trigger_at``).

    The audience is a CTE (evaluated once), and every fact comes from one grouped
    pass over its table, LEFT JOINed by customer: far cheaper than a probe per
    customer and fact. For a ``small`` audience (a trigger's, one customer) the
    passes look the audience's rows up by customer; for a large one they scan
    the recent slice of each table once, which is cheaper than a lookup per member.

    Only the facts the candidate ``channels`` can use are read: consent for those
    channels, sessions only for ``in_app`` and ``web``, device tokens only for
    ``push`` (the session pass alone is most of the query's cost). ``FactsReader``
    gives the missing ones their "nothing known" value, which no stage reads.
    """
    members = audience.cte("members")
    mine: Select[Any] | None = select(members.c.id) if small else None
    c = customers
    consented = tuple(ch for ch in _CONSENTED if ch in channels)
    consent = _consent_table(campaign.purpose, consented, mine) if consented else None
    sessions = _session_table(now, settings, mine) if {"in_app", "web"} & set(channels) else None
    sent = _sent_table(campaign, now, channels, settings, mine)
    last = _last_table(campaign, now, mine)
    tokens = (
        select(device_tokens.c.customer_id)
        .where(
            device_tokens.c.invalidated_at.is_(None),
            *_among(device_tokens.c.customer_id, mine),
        )
        .group_by(device_tokens.c.customer_id)
        .subquery("tokens")
        if "push" in channels
        else None
    )
    blocking = (
        ("unsubscribed", "hard_bounce", "spam_complaint", "manual")
        if campaign.purpose == "marketing"
        else ("hard_bounce", "spam_complaint")
    )
    blocked = suppressions.alias("blocked")
    joined = members.join(c, c.c.id == members.c.id)
    columns: list[ColumnElement[Any]] = [c.c.id, c.c.email, c.c.timezone, c.c.locale]
    if consent is not None:
        joined = joined.outerjoin(consent, consent.c.customer_id == c.c.id)
        columns += [consent.c[f"consent_{ch}"] for ch in consented]
    if sessions is not None:
        joined = joined.outerjoin(sessions, sessions.c.customer_id == c.c.id)
        columns += [sessions.c.last_app, sessions.c.last_web]
    if tokens is not None:
        joined = joined.outerjoin(tokens, tokens.c.customer_id == c.c.id)
        columns.append(tokens.c.customer_id.is_not(None).label("push_token"))
    joined = (
        joined.outerjoin(sent, sent.c.customer_id == c.c.id)
        .outerjoin(last, last.c.customer_id == c.c.id)
        .outerjoin(
            blocked,
            and_(
                blocked.c.channel == "email",
                blocked.c.address == func.lower(c.c.email),
                blocked.c.reason.in_(blocking),
            ),
        )
    )
    columns += [
        blocked.c.address.is_not(None).label("email_suppressed"),
        *(column for column in sent.c if column.name != "customer_id"),
        last.c.last_received,
        members.c.trigger_at,
    ]
    return select(*columns).select_from(joined)


def _among(column: Any, mine: Select[Any] | None) -> list[ColumnElement[bool]]:
    return [] if mine is None else [column.in_(mine)]


def _consent_table(purpose: str, channels: tuple[str, ...], mine: Select[Any] | None) -> Any:
    """One row per audience member with a consent: 1 granted, 0 refused, per channel."""
    k = consents
    columns = [
        func.max(case((k.c.channel == ch, case((k.c.granted, 1), else_=0)))).label(f"consent_{ch}")
        for ch in channels
    ]
    return (
        select(k.c.customer_id, *columns)
        .where(
            k.c.purpose == purpose,
            k.c.channel.in_(channels),
            *_among(k.c.customer_id, mine),
        )
        .group_by(k.c.customer_id)
        .subquery("consent")
    )


def _session_table(now: datetime, settings: PlanningSettings, mine: Select[Any] | None) -> Any:
    """The latest recent app session and web session of each audience member."""
    e = events.alias("sessions")
    app_since = now - parse_duration(settings.app_recent)
    web_since = now - parse_duration(settings.web_recent)
    device = json_property(e, "device", "text")
    platform = json_property(e, "platform", "text")
    is_app = or_(platform.in_(APP_DEVICES), device.in_(APP_DEVICES))
    return (
        select(
            e.c.customer_id,
            func.max(case((and_(is_app, e.c.ts > literal(app_since, Instant)), e.c.ts))).label(
                "last_app"
            ),
            func.max(
                case(
                    (
                        and_(
                            not_(func.coalesce(is_app, False)),
                            e.c.ts > literal(web_since, Instant),
                        ),
                        e.c.ts,
                    )
                )
            ).label("last_web"),
        )
        .where(
            e.c.type == "session_start",
            e.c.ts <= literal(now, Instant),
            e.c.ts > literal(min(app_since, web_since), Instant),
            *_among(e.c.customer_id, mine),
        )
        .group_by(e.c.customer_id)
        .subquery("recent_sessions")
    )


def _sent_table(
    campaign: Campaign,
    now: datetime,
    channels: tuple[str, ...],
    settings: PlanningSettings,
    mine: Select[Any] | None,
) -> Any:
    """Marketing messages of each audience member in the frequency windows.

    Sent ones always count; pending ones only when their campaign's priority is
    at least this one's — a higher-priority campaign wins a contested slot, and
    the dispatcher drops the loser when it comes to send it.
    """
    o = outbox.alias("cap")
    day, week = timedelta(days=1), timedelta(days=7)

    def within(window: timedelta, channel: str | None = None) -> ColumnElement[Any]:
        condition = and_(
            o.c.send_at > literal(now - window, Instant),
            o.c.send_at <= literal(now + window, Instant),
        )
        if channel is not None:
            condition = and_(condition, o.c.channel == channel)
        return func.count(case((condition, 1)))

    columns = [within(day).label("sent_day"), within(week).label("sent_week")]
    frequency = settings.frequency
    for channel in channels:
        if frequency.per_channel_per_day is not None:
            columns.append(within(day, channel).label(f"sent_day_{channel}"))
        if frequency.per_channel_per_week is not None:
            columns.append(within(week, channel).label(f"sent_week_{channel}"))
    return (
        select(o.c.customer_id, *columns)
        .where(
            *_among(o.c.customer_id, mine),
            o.c.purpose == "marketing",
            o.c.state.in_(PENDING_OR_SENT),
            o.c.send_at > literal(now - week, Instant),
            o.c.send_at <= literal(now + week, Instant),
            or_(o.c.state == "sent", o.c.priority >= campaign.priority),
        )
        .group_by(o.c.customer_id)
        .subquery("sent")
    )


def _last_table(campaign: Campaign, now: datetime, mine: Select[Any] | None) -> Any:
    """When this campaign last reached each audience member (within the re-entry period)."""
    o = outbox.alias("mine")
    where = [o.c.campaign == campaign.name, o.c.state.in_(RECEIVED)]
    where += _among(o.c.customer_id, mine)
    period = reentry_period(campaign.max_per_customer)
    if period is not None:
        where.append(o.c.send_at > literal(now - period, Instant))
    return (
        select(o.c.customer_id, func.max(o.c.send_at).label("last_received"))
        .where(*where)
        .group_by(o.c.customer_id)
        .subquery("last")
    )


class FactsReader:
    """Turns rows of ``facts_query`` into ``Facts``, by column position.

    ``at`` maps each column name to its position, for the planner's hot path,
    which reads the row itself; ``Facts`` are built only to explain a decision.
    """

    def __init__(self, columns: list[str], channels: tuple[str, ...]) -> None:
        at = {name: index for index, name in enumerate(columns)}
        self.at = at
        self._consent = [(ch, at[f"consent_{ch}"]) for ch in _CONSENTED if f"consent_{ch}" in at]
        self._day = [(ch, at[f"sent_day_{ch}"]) for ch in channels if f"sent_day_{ch}" in at]
        self._week = [(ch, at[f"sent_week_{ch}"]) for ch in channels if f"sent_week_{ch}" in at]
        self.per_channel = (self._day, self._week)
        """(channel, position) of the per-channel day and week counts, when capped."""

    def __call__(self, row: Any) -> Facts:
        at = self.at

        def value(name: str) -> Any:
            return row[at[name]] if name in at else None  # a fact no candidate channel uses

        return Facts(
            customer_id=row[at["id"]],
            email=row[at["email"]],
            timezone=row[at["timezone"]],
            locale=row[at["locale"]],
            consent={ch: _bool(row[i]) for ch, i in self._consent},
            email_suppressed=bool(row[at["email_suppressed"]]),
            push_token=bool(value("push_token")),
            last_app=value("last_app"),
            last_web=value("last_web"),
            sent_day=int(row[at["sent_day"]] or 0),
            sent_week=int(row[at["sent_week"]] or 0),
            sent_day_by_channel={ch: int(row[i] or 0) for ch, i in self._day},
            sent_week_by_channel={ch: int(row[i] or 0) for ch, i in self._week},
            last_received=row[at["last_received"]],
            trigger_at=row[at["trigger_at"]],
        )


def _bool(value: Any) -> bool | None:
    """1 / 0 / NULL as granted / refused / never asked."""
    return None if value is None else bool(value)
