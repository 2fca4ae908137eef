"""The planner: for one campaign and one instant, who gets what, on which channel, when.

The same code runs for ``narrowcast dry-run`` and for the worker, which only
adds writing the entries to the outbox. For every customer of the audience it
yields a ``PlanEntry`` (variant or holdout, channel, send instant) or a
``Dropped`` with the stage and the reason, streaming: customers are read in
batches and nothing is held per customer. The stages, in order:

1. **audience** — the segment (or ``where`` rule) minus ``exclude``; for a
   trigger campaign, the customers whose event (``on_event``) or segment
   entry (``on_enter``) falls in the planning window, within the audience;
2. **consent** — a channel the customer can be reached on and has consented
   to for the campaign's purpose (see ``facts.py`` for the rules);
3. **suppression** — and whose address is not suppressed;
4. **re-entry** — ``max_per_customer``: not already reached by this campaign
   (ever, or within the period);
5. **frequency cap** — marketing only: under ``[planning.frequency]``;
   then, for triggers with ``unless``, a message already due is cancelled when
   the rule holds now (the dispatcher checks the others when they fall due);
6. **holdout and variant** — a hash of (campaign, customer): the same answer
   every time the campaign is planned;
7. **channel** — the first usable one of the list, or for ``auto`` the usable
   channel with the best smoothed response rate for the audience
   (``engagement.py``), ties and cold start in ``channel_order``;
8. **send time** — now, a fixed local time, or ``auto`` (the audience's best
   local hour), then moved into the campaign window and out of quiet hours
   (marketing only), in the customer's time zone.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Select, and_, exists, func, literal, not_, select

from narrowcast.campaigns.model import Campaign, clock
from narrowcast.planning.engagement import Engagement, engagement
from narrowcast.planning.facts import Facts, FactsReader, facts_query
from narrowcast.planning.settings import PlanningSettings
from narrowcast.planning.timing import Span, allowed, at_local_time, window_end
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.evaluation import Evaluation
from narrowcast.segments.language import parse_duration
from narrowcast.store.schema import Instant, customers, events, segment_transitions

# Channels that interrupt the customer; in-app and web messages wait to be seen.
NOT_INTERRUPTING = frozenset({"in_app", "web"})
STAGES = ("audience", "consent", "suppression", "reentry", "frequency", "unless", "holdout")


@dataclass(frozen=True, slots=True)
class PlanEntry:
    customer_id: str
    dedupe_key: str
    holdout: bool
    variant: str | None
    channel: str | None
    """None for the holdout group."""
    send_at: datetime
    expires_at: datetime
    local_hour: int
    timezone: str
    locale: str | None
    trigger_at: datetime | None
    probability: float
    """Probability that this channel and hour were chosen (1.0: deterministic)."""


@dataclass(frozen=True, slots=True)
class Dropped:
    customer_id: str
    stage: str
    reason: str


@dataclass
class Summary:
    """How many customers were left after each stage, and where the planned ones go."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    """audience → remaining after consent → … → holdout (the size of the control group)."""
    planned: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    local_hours: Counter[int] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    channel_why: str = ""
    hour_why: str = ""


@dataclass(frozen=True)
class _Rules:
    """A campaign's timing and channel rules, parsed once per plan, not per customer."""

    channels: tuple[str, ...]
    window: Span | None
    quiet: Span | None
    expires: timedelta
    delay: timedelta
    fixed_time: time | None
    occurrence: datetime | None


class Plan:
    """The entries of one campaign occurrence; ``summary`` fills in as it is iterated."""

    def __init__(
        self,
        planner: Planner,
        campaign: Campaign,
        query: Select[Any],
        key: str,
        unless: Select[Any] | None = None,
    ) -> None:
        self.planner = planner
        self.campaign = campaign
        self._unless = unless
        self.cancelled: set[str] = set()
        """Customers for whom ``unless`` holds now (their due triggers are cancelled)."""
        self.rules = _Rules(
            channels=planner.candidate_channels(campaign),
            window=Span.parse(campaign.window) if campaign.window else None,
            quiet=planner.quiet if campaign.purpose == "marketing" else None,
            expires=parse_duration(campaign.expires),
            delay=parse_duration(campaign.delay) if campaign.delay else timedelta(0),
            fixed_time=(
                clock(campaign.send_time) if campaign.send_time not in ("now", "auto") else None
            ),
            occurrence=datetime.fromisoformat(key) if key else None,
        )
        self.summary = Summary()
        self.timings: dict[tuple[str, datetime, bool], tuple[datetime, datetime, int]] = {}
        self.best_hour: tuple[int, str] | None = None
        self.explanations: dict[str, list[tuple[str, str]]] = {}
        self._query = query
        self._key = key

    def __iter__(self) -> Iterator[PlanEntry | Dropped]:
        planner = self.planner
        channels = self.rules.channels
        batch = planner.settings.batch_size
        if self._unless is not None:
            self.cancelled = {str(i) for i in planner.conn.execute(self._unless).scalars()}
        statement = self._query.execution_options(yield_per=batch)
        result = planner.conn.execute(statement)
        read = FactsReader(list(result.keys()), channels)
        decide, key = planner.decide, self._key
        for part in result.partitions(batch):
            for row in part:
                yield decide(self, read(row), key)


class Planner:
    """Plans campaigns against one store connection, as of ``now``."""

    def __init__(
        self,
        conn: Connection,
        definitions: Definitions,
        settings: PlanningSettings,
        now: datetime,
        *,
        explain: bool = False,
    ) -> None:
        self.conn = conn
        self.definitions = definitions
        self.settings = settings
        self.now = now.astimezone(UTC)
        self.explain = explain
        self.evaluation = Evaluation(definitions, conn, self.now)
        self.quiet = Span.parse(settings.quiet_hours) if settings.quiet_hours else None
        self._zones: dict[str, ZoneInfo] = {}
        self._engagement: dict[str, Engagement] = {}

    # --- the audience --------------------------------------------------------------

    def audience(self, campaign: Campaign) -> Select[Any]:
        """``SELECT id`` of the campaign's audience: the segment or rule minus exclusions."""
        evaluation = self.evaluation
        if campaign.segment is not None:
            rule = evaluation.rule(campaign.segment)
        elif campaign.where is not None:
            rule = evaluation.rule(where=campaign.where)
        else:
            rule = None
        base = (evaluation.query(rule) if rule is not None else select(customers.c.id)).subquery(
            "base"
        )
        query = select(base.c.id.label("id"))
        for name in campaign.exclude:
            excluded = evaluation.query(evaluation.rule(name)).subquery()
            query = query.where(not_(exists().where(excluded.c.id == base.c.id)))
        return query

    def plan(
        self,
        campaign: Campaign,
        *,
        occurrence: datetime | None = None,
        since: datetime | None = None,
        customer_id: str | None = None,
    ) -> Plan:
        """Plan ``campaign`` as of ``now``.

        Scheduled campaigns plan their ``occurrence`` (default ``now``); trigger
        campaigns plan the triggers in (``since``, ``now``] (default: the last day).
        ``customer_id`` plans one customer only (for explanations).
        """
        audience = self.audience(campaign)
        if campaign.triggered:
            start = since if since is not None else self.now - timedelta(days=1)
            members = self.triggered(campaign, audience, start).subquery("triggered")
            key = ""
        else:
            at = (occurrence or self.now).astimezone(UTC)
            everyone = audience.subquery("everyone")
            members = select(everyone.c.id, literal(None, Instant).label("trigger_at")).subquery(
                "scheduled"
            )
            key = at.isoformat()
        chosen = select(members.c.id, members.c.trigger_at)
        if customer_id is not None:
            chosen = chosen.where(members.c.id == customer_id)
        channels = self.candidate_channels(campaign)
        small = campaign.triggered or customer_id is not None
        query = facts_query(chosen, campaign, self.settings, self.now, channels, small=small)
        unless = None
        if campaign.unless is not None:
            rule = self.evaluation.rule(where=campaign.unless)
            holding = self.evaluation.query(rule).subquery("unless_now")
            unless = select(holding.c.id).where(holding.c.id.in_(select(members.c.id)))
        plan = Plan(self, campaign, query, key, unless)
        if (campaign.channel == "auto" or campaign.send_time == "auto") and (
            campaign.name not in self._engagement
        ):
            self._engagement[campaign.name] = engagement(
                self.conn,
                audience,
                self.now,
                self.settings.engagement_days,
                self.settings.smoothing,
                self.settings.default_timezone,
            )
        return plan

    def triggered(self, campaign: Campaign, audience: Select[Any], since: datetime) -> Select[Any]:
        """``SELECT id, trigger_at`` (the latest trigger per customer) within the audience."""
        window = (literal(since, Instant), literal(self.now, Instant))
        if campaign.on_event is not None:
            e = events
            found = (
                select(e.c.customer_id.label("id"), func.max(e.c.ts).label("trigger_at"))
                .where(e.c.type == campaign.on_event, e.c.ts > window[0], e.c.ts <= window[1])
                .group_by(e.c.customer_id)
            )
        else:
            t = segment_transitions
            found = (
                select(t.c.customer_id.label("id"), func.max(t.c.at).label("trigger_at"))
                .where(
                    t.c.segment == campaign.on_enter,
                    t.c.change == "enter",
                    t.c.at > window[0],
                    t.c.at <= window[1],
                )
                .group_by(t.c.customer_id)
            )
        triggered = found.subquery("fired")
        members = audience.subquery("within")
        return select(triggered.c.id, triggered.c.trigger_at).where(
            exists().where(and_(members.c.id == triggered.c.id))
        )

    # --- the stages ----------------------------------------------------------------

    def candidate_channels(self, campaign: Campaign) -> tuple[str, ...]:
        if campaign.channel == "auto":
            return self.settings.channel_order
        return campaign.channel

    def decide(self, plan: Plan, facts: Facts, key: str) -> PlanEntry | Dropped:
        campaign = plan.campaign
        rules = plan.rules
        summary = plan.summary
        notes: list[tuple[str, str]] | None = [] if self.explain else None
        counts = summary.counts
        counts["audience"] += 1
        channels = rules.channels
        reached = [ch for ch in channels if _reachable(ch, facts)]
        consented = [ch for ch in reached if _consented(ch, facts, campaign.purpose)]
        if notes is not None:
            notes.append(("audience", _audience_note(campaign, facts)))
            notes.append(("consent", _consent_note(channels, facts, campaign.purpose)))
        if not consented:
            return self._drop(plan, facts, notes, "consent", _no_channel(channels, facts))
        counts["consent"] += 1
        usable = [ch for ch in consented if not (ch == "email" and facts.email_suppressed)]
        if not usable:
            return self._drop(plan, facts, notes, "suppression", "the email address is suppressed")
        counts["suppression"] += 1
        if notes is not None:
            notes.append(("suppression", "email suppressed" if facts.email_suppressed else "none"))
        if facts.last_received is not None:
            when = facts.last_received.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = f"already reached by this campaign ({campaign.max_per_customer}) on {when}"
            return self._drop(plan, facts, notes, "reentry", reason)
        counts["reentry"] += 1
        if campaign.purpose == "marketing":
            usable, capped = self._frequency(facts, usable)
            if notes is not None:
                notes.append(("frequency", self._frequency_note(facts)))
            if not usable:
                return self._drop(plan, facts, notes, "frequency", capped)
        counts["frequency"] += 1
        base = self._base_time(campaign, rules, facts)
        if campaign.unless is not None:
            if base <= self.now and facts.customer_id in plan.cancelled:
                reason = f"unless holds: {campaign.unless}"
                return self._drop(plan, facts, notes, "unless", reason)
            if notes is not None:
                checked = "holds" if facts.customer_id in plan.cancelled else "does not hold"
                when = "now" if base <= self.now else "again at send time"
                notes.append(("unless", f"{campaign.unless} {checked} now; checked {when}"))
        counts["unless"] += 1
        holdout, variant, assignment = _assign(campaign, facts.customer_id)
        if notes is not None:
            notes.append(("holdout", assignment))
        if holdout:
            counts["holdout"] += 1
        channel, probability = (None, 1.0) if holdout else self._channel(campaign, usable, notes)
        zone_name = facts.timezone or self.settings.default_timezone
        quiet = rules.quiet if channel not in NOT_INTERRUPTING else None
        # Everyone in one zone with one base instant gets the same times: work them out once.
        cached = (zone_name, base, quiet is not None)
        timing = plan.timings.get(cached) if notes is None else None
        if timing is None:
            zone = self._zone(zone_name)
            send_at = self._send_time(campaign, rules, base, zone, quiet, notes)
            expires_at = send_at + rules.expires
            if rules.window is not None:
                expires_at = min(expires_at, window_end(send_at, zone, rules.window))
            timing = (send_at, expires_at, send_at.astimezone(zone).hour)
            plan.timings[cached] = timing
        send_at, expires_at, local_hour = timing
        occurrence = key or f"{campaign.schedule_kind}:{_iso(facts.trigger_at)}"
        entry = PlanEntry(
            customer_id=facts.customer_id,
            dedupe_key=f"{campaign.name}|{occurrence}|{facts.customer_id}",
            holdout=holdout,
            variant=variant,
            channel=channel,
            send_at=send_at,
            expires_at=expires_at,
            local_hour=local_hour,
            timezone=zone_name,
            locale=facts.locale,
            trigger_at=facts.trigger_at,
            probability=probability,
        )
        if not holdout:
            summary.planned += 1
            summary.channels[channel or ""] += 1
            summary.local_hours[local_hour] += 1
        summary.variants[variant or "(holdout)" if holdout else variant or "(none)"] += 1
        if notes is not None:
            plan.explanations[facts.customer_id] = notes
        return entry

    def _drop(
        self,
        plan: Plan,
        facts: Facts,
        notes: list[tuple[str, str]] | None,
        stage: str,
        reason: str,
    ) -> Dropped:
        plan.summary.reasons[f"{stage}: {reason}"] += 1
        if notes is not None:
            notes.append((stage, f"DROPPED — {reason}"))
            plan.explanations[facts.customer_id] = notes
        return Dropped(facts.customer_id, stage, reason)

    def _frequency(self, facts: Facts, usable: list[str]) -> tuple[list[str], str]:
        frequency = self.settings.frequency
        if frequency.per_day is not None and facts.sent_day >= frequency.per_day:
            return [], f"{facts.sent_day} marketing messages in a day (cap {frequency.per_day})"
        if frequency.per_week is not None and facts.sent_week >= frequency.per_week:
            return [], f"{facts.sent_week} marketing messages in a week (cap {frequency.per_week})"
        left = [
            ch
            for ch in usable
            if not (
                frequency.per_channel_per_day is not None
                and facts.sent_day_by_channel.get(ch, 0) >= frequency.per_channel_per_day
            )
            and not (
                frequency.per_channel_per_week is not None
                and facts.sent_week_by_channel.get(ch, 0) >= frequency.per_channel_per_week
            )
        ]
        return left, "every usable channel is at its own cap"

    def _frequency_note(self, facts: Facts) -> str:
        f = self.settings.frequency
        return (
            f"{facts.sent_day} in the last day (cap {f.per_day}), "
            f"{facts.sent_week} in the last week (cap {f.per_week})"
        )

    def _channel(
        self, campaign: Campaign, usable: list[str], notes: list[tuple[str, str]] | None
    ) -> tuple[str, float]:
        if campaign.channel != "auto":
            chosen = next(ch for ch in campaign.channel if ch in usable)
            if notes is not None:
                notes.append(("channel", f"{chosen}: the first usable of {list(campaign.channel)}"))
            return chosen, 1.0
        rates = self._engagement[campaign.name].channels
        order = self.settings.channel_order
        chosen = max(usable, key=lambda ch: (rates.rates.get(ch, 0.0), -order.index(ch)))
        if notes is not None:
            shown = ", ".join(
                f"{ch} {rates.rates.get(ch, 0.0):.3f} "
                f"({rates.responses.get(ch, 0)}/{rates.sends.get(ch, 0)})"
                for ch in usable
            )
            why = "best smoothed response rate" if rates.has_data else "no data: channel_order"
            notes.append(("channel", f"{chosen} — {why}; usable: {shown}"))
        return chosen, 1.0

    def _base_time(self, campaign: Campaign, rules: _Rules, facts: Facts) -> datetime:
        if campaign.triggered and facts.trigger_at is not None:
            return max(facts.trigger_at.astimezone(UTC) + rules.delay, self.now)
        if rules.occurrence is not None:
            return max(rules.occurrence, self.now)
        return self.now

    def _send_time(
        self,
        campaign: Campaign,
        rules: _Rules,
        base: datetime,
        zone: ZoneInfo,
        quiet: Span | None,
        notes: list[tuple[str, str]] | None,
    ) -> datetime:
        why = "now"
        if campaign.send_time == "auto":
            hour, reason = self._best_hour(campaign, rules)  # cached by the plan's timings
            candidate = at_local_time(base, time(hour, 0), zone)
            why = f"auto: {hour:02d}:00 local — {reason}"
        elif rules.fixed_time is not None:
            candidate = at_local_time(base, rules.fixed_time, zone)
            why = f"{campaign.send_time} local"
        else:
            candidate = base
        send_at = allowed(candidate, zone, rules.window, quiet)
        if notes is not None:
            moved = "" if send_at == candidate else " (moved into the window / out of quiet hours)"
            local_at = send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            notes.append(
                ("send time", f"{why}{moved}: {local_at} {zone.key} = {_iso(send_at)} UTC")
            )
        return send_at

    def _best_hour(self, campaign: Campaign, rules: _Rules) -> tuple[int, str]:
        """The audience's best local hour among those the window and quiet hours allow."""
        hours = [
            h
            for h in range(24)
            if (rules.window is None or rules.window.contains(time(h, 0)))
            and (rules.quiet is None or not rules.quiet.contains(time(h, 0)))
        ]
        default = clock(self.settings.default_hour).hour
        return self._engagement[campaign.name].best_hour(default, hours or list(range(24)))

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                zone = ZoneInfo(self.settings.default_timezone)
            self._zones[name] = zone
        return zone


def _reachable(channel: str, facts: Facts) -> bool:
    if channel == "email":
        return facts.email is not None
    if channel == "push":
        return facts.push_token
    if channel == "in_app":
        return facts.last_app is not None
    if channel == "web":
        return facts.last_web is not None
    return True


def _consented(channel: str, facts: Facts, purpose: str) -> bool:
    consent = facts.consent.get(channel)
    if purpose == "marketing" and channel in ("email", "push"):
        return consent is True
    return consent is not False


def _no_channel(channels: tuple[str, ...], facts: Facts) -> str:
    missing = []
    for ch in channels:
        if not _reachable(ch, facts):
            missing.append(f"{ch}: unreachable")
        else:
            missing.append(f"{ch}: no consent")
    return "no usable channel (" + ", ".join(missing) + ")"


def _consent_note(channels: tuple[str, ...], facts: Facts, purpose: str) -> str:
    parts = []
    for ch in channels:
        if not _reachable(ch, facts):
            parts.append(f"{ch} unreachable")
        else:
            state = {True: "granted", False: "refused", None: "not asked"}[facts.consent.get(ch)]
            ok = "ok" if _consented(ch, facts, purpose) else "no"
            parts.append(f"{ch} {state} ({ok})")
    return "; ".join(parts)


def _audience_note(campaign: Campaign, facts: Facts) -> str:
    if campaign.segment:
        source = f"segment '{campaign.segment}'"
    elif campaign.where:
        source = "its where rule"
    else:
        source = "everyone it triggers on"
    note = f"in {source}"
    if campaign.exclude:
        note += f", not in {', '.join(campaign.exclude)}"
    if facts.trigger_at is not None:
        note += f"; triggered at {_iso(facts.trigger_at)} UTC"
    return note


def _assign(campaign: Campaign, customer_id: str) -> tuple[bool, str | None, str]:
    """Holdout and variant from a stable hash of (campaign, customer)."""
    draw = _unit(f"{campaign.name}\x00holdout\x00{customer_id}")
    if draw < campaign.holdout:
        return True, None, f"holdout (hash {draw:.3f} < {campaign.holdout})"
    if not campaign.variants:
        return False, None, f"treated (hash {draw:.3f} ≥ holdout {campaign.holdout})"
    total = sum(v.weight for v in campaign.variants)
    pick = _unit(f"{campaign.name}\x00variant\x00{customer_id}") * total
    running = 0.0
    chosen = campaign.variants[-1].name
    for variant in campaign.variants:
        running += variant.weight
        if pick < running:
            chosen = variant.name
            break
    weights = ", ".join(f"{v.name} {v.weight:g}" for v in campaign.variants)
    return False, chosen, f"variant '{chosen}' (hash {pick / total:.3f} over weights {weights})"


def _unit(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _iso(instant: datetime | None) -> str:
    if instant is None:
        return "-"
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
