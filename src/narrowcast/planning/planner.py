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
6. **control, holdout and variant** — marketing only: the global control
   group (``[planning.control]``, a stable hash per reshuffle period) gets
   nothing; then a hash of (campaign, customer) puts the campaign's holdout
   share aside and draws the variant — by the campaign's weights, or by the
   A/B bandit's allocation for this batch (``optimize/variants.py``);
7. **channel** — the first usable one of the list, or for ``auto`` a
   Thompson-sampling choice among the usable channels (``optimize/channels.py``);
8. **send time** — now, a fixed local time, or ``auto`` (a Thompson-sampling
   choice of local hour, ``optimize/send_time.py``), then moved into the
   campaign window and out of quiet hours (marketing only), in the customer's
   time zone.

Learned choices are drawn with a stable per-customer number, so a dry-run
shows what the run will do on the same data, and each entry carries the
probability of its channel and hour, and of its variant, for unbiased evaluation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, and_, exists, func, literal, not_, select

from narrowcast.campaigns.model import Campaign, clock
from narrowcast.optimize.beta import prefix, unit_of
from narrowcast.optimize.control import ControlGroup
from narrowcast.optimize.learner import Learner
from narrowcast.optimize.trials import Goal
from narrowcast.planning.facts import Facts, FactsReader, facts_query
from narrowcast.planning.settings import PlanningSettings
from narrowcast.planning.timing import Span, allowed, at_local_time, window_end
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.evaluation import Evaluation
from narrowcast.segments.language import parse_duration
from narrowcast.store.schema import Instant, customers, events, segment_transitions
from narrowcast.timezones import Zones

# Channels that interrupt the customer; in-app and web messages wait to be seen.
NOT_INTERRUPTING = frozenset({"in_app", "web"})
STAGES = ("audience", "consent", "suppression", "reentry", "frequency", "unless", "holdout")
# What makes a customer reachable on a channel: a column that is not NULL (or false).
_REACH = {"email": "email", "push": "push_token", "in_app": "last_app", "web": "last_web"}
_HELD: tuple[str | None, int, str] = (None, -1, "(holdout)")
_CONTROL: tuple[str | None, int, str] = (None, -2, "(global control)")
_Timing = tuple[datetime, datetime, int]
"""send_at, expires_at, local hour."""


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
    assignment: str = "treated"
    """``treated``, ``holdout`` (the campaign's) or ``control`` (the global control group)."""
    variant_probability: float | None = None
    """Probability that this variant was drawn, given treated (None: no variants)."""


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
    control: int = 0
    """Of ``counts["holdout"]``, those in the global control group."""
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
    triggered: bool
    auto_time: bool
    schedule_kind: str
    marketing: bool


class _Assignment:
    """Holdout and variant draws of one campaign: the hash prefixes and weights, once."""

    __slots__ = (
        "holdout",
        "prefix_holdout",
        "prefix_variant",
        "names",
        "weights",
        "bounds",
        "total",
        "why",
    )

    def __init__(self, campaign: Campaign, learner: Learner) -> None:
        self.holdout = campaign.holdout
        self.prefix_holdout = prefix(campaign.name, "holdout")
        self.prefix_variant = prefix(campaign.name, "variant")
        allocation = learner.allocation
        if allocation is not None:
            weights = allocation.weights
            self.names = tuple(v.name for v in campaign.variants if weights.get(v.name, 0) > 0)
            self.weights = tuple(weights[name] for name in self.names)
            self.why = allocation.reason
        else:
            self.names = tuple(v.name for v in campaign.variants)
            self.weights = tuple(v.weight for v in campaign.variants)
            self.why = "weights"
        self.total = sum(self.weights)
        bounds, running = [], 0.0
        for weight in self.weights:
            running += weight  # the same additions, in the same order, as ever
            bounds.append(running)
        self.bounds = tuple(bounds)


class Plan:
    """The entries of one campaign occurrence; ``summary`` fills in as it is iterated."""

    def __init__(
        self,
        planner: Planner,
        campaign: Campaign,
        query: Select[Any],
        key: str,
        learner: Learner,
        unless: Select[Any] | None = None,
    ) -> None:
        self.planner = planner
        self.campaign = campaign
        self.learner = learner
        self._unless = unless
        self.cancelled: set[str] = set()
        """Customers for whom ``unless`` holds now (their due triggers are cancelled)."""
        schedule_kind = campaign.schedule_kind
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
            triggered=schedule_kind in ("on_enter", "on_event"),
            auto_time=campaign.send_time == "auto",
            schedule_kind=schedule_kind,
            marketing=campaign.purpose == "marketing",
        )
        self.assignment = _Assignment(campaign, learner)
        self.summary = Summary()
        self.timings: dict[tuple[str, datetime, bool, int], _Timing] = {}
        self._allowed = tuple(
            _allowed_hours(self.rules.window, quiet) for quiet in (None, self.rules.quiet)
        )
        """Local hours ``auto`` may choose from: without, then with quiet hours."""
        self.explanations: dict[str, list[tuple[str, str]]] = {}
        self._query = query
        self._key = key
        # Tallies of the hot path, added to ``summary`` after every batch.
        self._passed = [0] * len(STAGES)
        """How many customers stopped after passing exactly this many stages."""
        self._placed: Counter[tuple[str | None, int, str]] = Counter()
        """(channel, local hour, variant) of the planned entries, (None, -1, "(holdout)")
        for the holdout group; a Counter keeps the order in which they first appear."""
        self._no_channel: dict[int, str] = {}
        """The consent stage's reasons, by the channels that cannot be reached."""
        now = planner.now
        occurrence = self.rules.occurrence
        self._base = max(occurrence, now) if occurrence is not None else now
        """The base send instant of every customer without a trigger of their own."""
        self._zone_timings: tuple[dict[str, _Timing], dict[str, _Timing]] = ({}, {})
        """``timings`` for ``_base``, by zone only: without, then with quiet hours."""
        self._dedupe = f"{campaign.name}|{key}|" if key else None
        frequency = planner.settings.frequency
        self._caps = (
            math.inf if frequency.per_day is None else frequency.per_day,
            math.inf if frequency.per_week is None else frequency.per_week,
        )
        """The daily and weekly caps (infinite when there is none)."""
        # Set from the query's columns when iteration starts.
        self._read: FactsReader | None = None
        self._columns = (0,) * 8
        self._checks: tuple[tuple[str, int, bool, int, bool, int], ...] = ()
        self._per_channel: tuple[list[tuple[str, int]], list[tuple[str, int]]] | None = None

    def __iter__(self) -> Iterator[PlanEntry | Dropped]:
        planner = self.planner
        batch = planner.settings.batch_size
        if self._unless is not None:
            self.cancelled = {str(i) for i in planner.conn.execute(self._unless).scalars()}
        statement = self._query.execution_options(yield_per=batch)
        result = planner.conn.execute(statement)
        self._prepare(list(result.keys()))
        decide = planner.decide
        try:
            for part in result.partitions(batch):
                for row in part:
                    yield decide(self, row)
                self._tally()
        finally:
            self._tally()

    def facts(self, row: Any) -> Facts:
        """The ``Facts`` of one row of the plan's query (to explain a decision)."""
        assert self._read is not None
        return self._read(row)

    def _prepare(self, columns: list[str]) -> None:
        """Column positions and per-channel checks for ``Planner.decide``."""
        read = FactsReader(columns, self.rules.channels)
        self._read = read
        at = read.at
        self._columns = (
            at["id"],
            at["timezone"],
            at["locale"],
            at["email_suppressed"],
            at["sent_day"],
            at["sent_week"],
            at["last_received"],
            at["trigger_at"],
        )
        strict = self.rules.marketing
        checks = []
        for index, channel in enumerate(self.rules.channels):
            reach = _REACH.get(channel)
            checks.append(
                (
                    channel,
                    -1 if reach is None else at[reach],
                    channel == "push",  # a flag, not a value that may be missing
                    at.get(f"consent_{channel}", -1),
                    strict and channel in ("email", "push"),
                    1 << index,
                )
            )
        self._checks = tuple(checks)
        per_channel = read.per_channel
        self._per_channel = per_channel if per_channel[0] or per_channel[1] else None

    def _tally(self) -> None:
        """Move the hot path's tallies into ``summary``."""
        summary = self.summary
        passed = self._passed
        remaining = sum(passed)
        for index, stage in enumerate(STAGES[:-1]):
            summary.counts[stage] += remaining
            remaining -= passed[index + 1]
        for (channel, hour, variant), n in self._placed.items():
            summary.variants[variant] += n
            if channel is None:
                summary.counts["holdout"] += n
                if hour == _CONTROL[1]:
                    summary.control += n
                continue
            summary.planned += n
            summary.channels[channel] += n
            summary.local_hours[hour] += n
        self._passed = [0] * len(STAGES)
        self._placed = Counter()


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
        goals: Mapping[str, Goal] | None = None,
    ) -> None:
        """``goals``: what rewards each campaign's messages (``optimize.learner.goals_of``
        of the library); without it, other campaigns' messages count clicks only."""
        self.conn = conn
        self.definitions = definitions
        self.settings = settings
        self.now = now.astimezone(UTC)
        self.explain = explain
        self.evaluation = Evaluation(definitions, conn, self.now)
        self.quiet = Span.parse(settings.quiet_hours) if settings.quiet_hours else None
        self._zone = Zones(settings.default_timezone)
        self.control = ControlGroup(settings.control, self.now)
        self.goals = goals

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
        occurrence_tag = key or f"trigger:{self.now.isoformat()}"
        learner = Learner(
            self.conn, campaign, audience, self.now, self.settings, occurrence_tag, self.goals
        )
        return Plan(self, campaign, query, key, learner, unless)

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

    def decide(self, plan: Plan, row: Any) -> PlanEntry | Dropped:
        """The outcome for one row of ``plan``'s query, through the stages above.

        This runs once per customer, so it reads the row by position, leaves the
        stage counts to the plan's tallies, and builds ``Facts`` and the notes
        only when explaining.
        """
        campaign = plan.campaign
        rules = plan.rules
        i_id, i_zone, i_locale, i_suppressed, i_day, i_week, i_last, i_trigger = plan._columns
        customer_id = row[i_id]
        facts = plan.facts(row) if self.explain else None
        notes: list[tuple[str, str]] | None = None
        if facts is not None:
            notes = [
                ("audience", _audience_note(campaign, facts)),
                ("consent", _consent_note(rules.channels, facts, campaign.purpose)),
            ]
        consented: list[str] = []
        unreachable = 0  # a bit per candidate channel the customer cannot be reached on
        for candidate, reach, truthy, consent, strict, bit in plan._checks:
            if reach >= 0:
                value = row[reach]
                if value is None or (truthy and not value):
                    unreachable |= bit
                    continue
            given = row[consent] if consent >= 0 else None  # 1 granted, 0 refused, None
            if given if strict else (given is None or given):
                consented.append(candidate)
        if not consented:
            reason = plan._no_channel.get(unreachable)
            if reason is None:
                reason = plan._no_channel[unreachable] = _no_channel(rules.channels, unreachable)
            return self._drop(plan, customer_id, notes, 1, reason)
        usable = consented
        if row[i_suppressed] and "email" in consented:
            usable = [ch for ch in consented if ch != "email"]
            if not usable:
                return self._drop(plan, customer_id, notes, 2, "the email address is suppressed")
        if notes is not None:
            notes.append(("suppression", "email suppressed" if row[i_suppressed] else "none"))
        last_received = row[i_last]
        if last_received is not None:
            when = last_received.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = f"already reached by this campaign ({campaign.max_per_customer}) on {when}"
            return self._drop(plan, customer_id, notes, 3, reason)
        if rules.marketing:
            day_cap, week_cap = plan._caps
            if (
                notes is not None
                or plan._per_channel is not None
                or (row[i_day] or 0) >= day_cap
                or (row[i_week] or 0) >= week_cap
            ):
                usable, capped = self._frequency(plan, row, usable)
                if facts is not None and notes is not None:
                    notes.append(("frequency", self._frequency_note(facts)))
                if not usable:
                    return self._drop(plan, customer_id, notes, 4, capped)
        trigger_at = row[i_trigger]
        base = plan._base if trigger_at is None else self._base_time(rules, trigger_at)
        if campaign.unless is not None:
            if base <= self.now and customer_id in plan.cancelled:
                reason = f"unless holds: {campaign.unless}"
                return self._drop(plan, customer_id, notes, 5, reason)
            if notes is not None:
                checked = "holds" if customer_id in plan.cancelled else "does not hold"
                when = "now" if base <= self.now else "again at send time"
                notes.append(("unless", f"{campaign.unless} {checked} now; checked {when}"))
        control = rules.marketing and self.control.holds(customer_id)
        if control:
            holdout, variant, variant_probability = True, None, None
            if notes is not None:
                period = self.settings.control.reshuffle_days
                notes.append(("holdout", f"global control group (reshuffled every {period} days)"))
        else:
            holdout, variant, variant_probability = _assign(plan.assignment, customer_id, notes)
        learner = plan.learner
        if holdout:
            channel: str | None = None
            probability = 1.0
        elif learner.channels is not None:
            u = unit_of(learner.channel_prefix, customer_id)
            channel, choice = learner.channels.choose(
                tuple(usable), customer_id, u, notes is not None
            )
            probability = choice.probability
            if notes is not None:
                notes.append(("channel", f"{channel} — {choice.why}"))
        else:
            channel, probability = usable[0], 1.0  # usable keeps the campaign's order
            if notes is not None:
                notes.append(("channel", f"{channel}: the first usable of {list(rules.channels)}"))
        zone_name = row[i_zone] or self.settings.default_timezone
        quiet = rules.quiet if channel not in NOT_INTERRUPTING else None
        hour = -1
        if learner.hours is not None:
            allowed_hours = plan._allowed[quiet is not None]
            u = unit_of(learner.hour_prefix, customer_id)
            hour_choice = learner.hours.choose(allowed_hours, customer_id, u, notes is not None)
            hour = hour_choice.option
            if not holdout:
                probability *= hour_choice.probability
            if notes is not None:
                notes.append(("learned hour", hour_choice.why))
        # Everyone in one zone with one base instant gets the same times: work them out once.
        timing = None
        if notes is None:
            if base is plan._base and hour < 0:
                timing = plan._zone_timings[quiet is not None].get(zone_name)
            else:
                timing = plan.timings.get((zone_name, base, quiet is not None, hour))
        if timing is None:
            zone = self._zone(zone_name)
            send_at = self._send_time(campaign, rules, base, zone, quiet, notes, hour)
            expires_at = send_at + rules.expires
            if rules.window is not None:
                expires_at = min(expires_at, window_end(send_at, zone, rules.window))
            timing = (send_at, expires_at, send_at.astimezone(zone).hour)
            plan.timings[(zone_name, base, quiet is not None, hour)] = timing
            if base is plan._base and hour < 0:
                plan._zone_timings[quiet is not None][zone_name] = timing
        send_at, expires_at, local_hour = timing
        if plan._dedupe is not None:
            dedupe_key = plan._dedupe + customer_id
        else:
            occurrence = f"{rules.schedule_kind}:{_iso(trigger_at)}"
            dedupe_key = f"{campaign.name}|{occurrence}|{customer_id}"
        entry = PlanEntry(
            customer_id,
            dedupe_key,
            holdout,
            variant,
            channel,
            send_at,
            expires_at,
            local_hour,
            zone_name,
            row[i_locale],
            trigger_at,
            probability,
            "control" if control else "holdout" if holdout else "treated",
            variant_probability,
        )
        plan._passed[6] += 1
        if control:
            plan._placed[_CONTROL] += 1
        elif holdout:
            plan._placed[_HELD] += 1
        else:
            plan._placed[(channel, local_hour, variant or "(none)")] += 1
        if notes is not None:
            plan.explanations[customer_id] = notes
        return entry

    def _drop(
        self,
        plan: Plan,
        customer_id: str,
        notes: list[tuple[str, str]] | None,
        passed: int,
        reason: str,
    ) -> Dropped:
        """Drop the customer at the stage after the ``passed`` first ones."""
        stage = STAGES[passed]
        plan._passed[passed] += 1
        plan.summary.reasons[f"{stage}: {reason}"] += 1
        if notes is not None:
            notes.append((stage, f"DROPPED — {reason}"))
            plan.explanations[customer_id] = notes
        return Dropped(customer_id, stage, reason)

    def _frequency(self, plan: Plan, row: Any, usable: list[str]) -> tuple[list[str], str]:
        frequency = self.settings.frequency
        _, _, _, _, i_day, i_week, _, _ = plan._columns
        sent_day = row[i_day] or 0
        if frequency.per_day is not None and sent_day >= frequency.per_day:
            return [], f"{int(sent_day)} marketing messages in a day (cap {frequency.per_day})"
        sent_week = row[i_week] or 0
        if frequency.per_week is not None and sent_week >= frequency.per_week:
            return [], (f"{int(sent_week)} marketing messages in a week (cap {frequency.per_week})")
        if not plan._per_channel:
            return usable, ""
        day, week = plan._per_channel
        by_day = {ch: int(row[i] or 0) for ch, i in day}
        by_week = {ch: int(row[i] or 0) for ch, i in week}
        left = [
            ch
            for ch in usable
            if not (
                frequency.per_channel_per_day is not None
                and by_day.get(ch, 0) >= frequency.per_channel_per_day
            )
            and not (
                frequency.per_channel_per_week is not None
                and by_week.get(ch, 0) >= frequency.per_channel_per_week
            )
        ]
        return left, "every usable channel is at its own cap"

    def _frequency_note(self, facts: Facts) -> str:
        f = self.settings.frequency
        return (
            f"{facts.sent_day} in the last day (cap {f.per_day}), "
            f"{facts.sent_week} in the last week (cap {f.per_week})"
        )

    def _base_time(self, rules: _Rules, trigger_at: datetime | None) -> datetime:
        """When the message is due before the window and quiet hours move it."""
        if rules.triggered and trigger_at is not None:
            return max(trigger_at.astimezone(UTC) + rules.delay, self.now)
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
        hour: int,
    ) -> datetime:
        """``hour``: the learned local hour of ``send_time = "auto"`` (else -1)."""
        why = "now"
        if hour >= 0:
            candidate = at_local_time(base, time(hour, 0), zone)
            why = f"auto: {hour:02d}:00 local (learned)"
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


def _allowed_hours(window: Span | None, quiet: Span | None) -> tuple[int, ...]:
    """Local hours whose start the campaign window allows and quiet hours do not cover."""
    hours = tuple(
        h
        for h in range(24)
        if (window is None or window.contains(time(h, 0)))
        and (quiet is None or not quiet.contains(time(h, 0)))
    )
    return hours or tuple(range(24))


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


def _no_channel(channels: tuple[str, ...], unreachable: int) -> str:
    """The consent stage's reason; bit ``1 << i`` of ``unreachable``: channel i is."""
    missing = []
    for index, ch in enumerate(channels):
        if unreachable & (1 << index):
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


def _assign(
    assignment: _Assignment, customer_id: str, notes: list[tuple[str, str]] | None
) -> tuple[bool, str | None, float | None]:
    """Holdout and variant from a stable hash of (campaign, customer)."""
    a = assignment
    # A draw is in [0, 1): with no holdout it cannot fall below it, so skip the hash.
    draw = 1.0
    if a.holdout > 0 or notes is not None:
        draw = unit_of(a.prefix_holdout, customer_id)
    if draw < a.holdout:
        if notes is not None:
            notes.append(("holdout", f"holdout (hash {draw:.3f} < {a.holdout})"))
        return True, None, None
    if not a.names:
        if notes is not None:
            notes.append(("holdout", f"treated (hash {draw:.3f} ≥ holdout {a.holdout})"))
        return False, None, None
    pick = unit_of(a.prefix_variant, customer_id) * a.total
    chosen = a.names[-1]
    weight = a.weights[-1]
    for name, bound, share in zip(a.names, a.bounds, a.weights, strict=True):
        if pick < bound:
            chosen, weight = name, share
            break
    if notes is not None:
        weights = ", ".join(
            f"{name} {share / a.total:.2f}" for name, share in zip(a.names, a.weights, strict=True)
        )
        note = f"variant '{chosen}' (hash {pick / a.total:.3f} over shares {weights}; {a.why})"
        notes.append(("holdout", note))
    return False, chosen, weight / a.total


def _iso(instant: datetime | None) -> str:
    if instant is None:
        return "-"
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
