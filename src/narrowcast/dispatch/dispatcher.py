"""The dispatch loop: claim due messages, check them, render them, send them, record what happened.

For each channel, ``concurrency`` loops run side by side, each one doing, batch
after batch:

1. **claim** up to a batch of due rows (``send_at ≤ now``) with a lease;
2. **check** them again (``gate.py``): campaign still enabled, consent,
   suppression, address, frequency caps, ``unless``; expired rows are expired;
3. **render** each message with the same code ``dry-run`` uses; a template that
   fails for one customer fails that row with the error, the rest go on;
4. mark them ``sending`` (committed), wait for the channel's **rate limit**,
   and hand the batch to the channel's adapter — renewing the batch's lease
   every third of its length meanwhile, so that only a dead worker loses it;
5. **record** every result in one transaction (``Outbox.settle``): ``sent`` with
   the provider's id and a ``message_sent`` event; ``retry`` with backoff and
   jitter (honouring ``Retry-After``); ``failed``, suppressing a bad address or
   invalidating a dead push token; ``unknown`` when the provider may have the
   message and a repeat would not be harmless; and for refused credentials,
   the channel is **paused** (``channel_pauses``, in that same transaction) and
   its messages wait, unburnt.

Database work runs in threads (``asyncio.to_thread``) so that one channel's
provider latency never stalls another's. ``drain`` returns when nothing is
due (``narrowcast tick``); ``run`` keeps going until told to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from narrowcast.campaigns.messages import KeysCache, render_message, segment_keys
from narrowcast.campaigns.model import Campaign
from narrowcast.channels.base import Channel, Message, Receipt
from narrowcast.channels.errors import ChannelPaused, PermanentError, TransientError
from narrowcast.channels.routes import Routes
from narrowcast.dispatch.clock import Clock
from narrowcast.dispatch.gate import Gate
from narrowcast.dispatch.outbox import REPEATABLE, Claimed, Outbox, Outcome
from narrowcast.dispatch.ratelimit import TokenBucket
from narrowcast.dispatch.retry import give_up, next_attempt
from narrowcast.planning.context import ContextReader
from narrowcast.render.errors import RenderError
from narrowcast.render.links import MessageLinks
from narrowcast.render.renderer import Renderer
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.language import parse_duration
from narrowcast.store import Store
from narrowcast.timezones import Zones

if TYPE_CHECKING:
    from narrowcast.config import Settings

log = logging.getLogger("narrowcast.dispatch")
_MAX_BATCH = 500


@dataclass
class DispatchStats:
    """What one worker did, by channel: for logs, ``status`` and metrics."""

    states: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def count(self, channel: str, state: str, n: int = 1) -> None:
        self.states[channel][state] += n

    def total(self, state: str) -> int:
        return sum(c[state] for c in self.states.values())


class Dispatcher:
    """Sends the due messages of every configured channel through ``routes``."""

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        routes: Routes,
        settings: Settings,
        renderer: Renderer,
        campaigns: Callable[[], Mapping[str, Campaign]],
        definitions: Callable[[], Definitions],
        clock: Clock,
        *,
        on_outcomes: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.routes = routes
        self.settings = settings
        self.renderer = renderer
        self.campaigns = campaigns
        self.definitions = definitions
        self.clock = clock
        self.stats = DispatchStats()
        self.on_outcomes = on_outcomes
        self.stopping = asyncio.Event()
        self._buckets: dict[str, TokenBucket] = {}
        self._lease = parse_duration(settings.dispatch.lease)
        self._zones = Zones(settings.planning.default_timezone)
        self._keys: KeysCache = {}
        self._renewals = ThreadPoolExecutor(1, thread_name_prefix="narrowcast-lease")

    # --- loops ---------------------------------------------------------------------------

    async def drain(self) -> DispatchStats:
        """Send everything due now on every channel, then return (``narrowcast tick``)."""
        await self._loops(forever=False)
        return self.stats

    async def run(self, idle: float = 1.0) -> None:
        """Keep sending until ``stopping`` is set; poll every ``idle`` seconds when idle."""
        await self._loops(forever=True, idle=idle)

    async def _loops(self, *, forever: bool, idle: float = 1.0) -> None:
        tasks = []
        for channel in self.routes:
            limits = self.settings.dispatch.limits(channel)
            if limits.rate is not None:
                self._buckets[channel] = TokenBucket(limits.rate)
            for _ in range(limits.concurrency):
                tasks.append(asyncio.create_task(self._loop(channel, forever, idle)))
        if tasks:
            await asyncio.gather(*tasks)

    async def _loop(self, channel: str, forever: bool, idle: float) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                done = await self.batch(channel)  # nothing while the channel is paused
                failures = 0
            except Exception as exc:
                # The database briefly away, a driver hiccup: nothing is lost (leases
                # expire, rows stay in the outbox), so wait and try again.
                failures += 1
                delay = min(2.0**failures, 60.0)
                log.error(
                    "%s: dispatch failed (%s: %s); retrying in %.0f s",
                    channel,
                    type(exc).__name__,
                    exc,
                    delay,
                    extra={"channel": channel},
                )
                if not forever and failures >= 3:
                    raise
                await asyncio.sleep(delay)
                continue
            if done:
                continue
            if not forever:
                return
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=idle)
            except TimeoutError:
                pass

    # --- one batch -------------------------------------------------------------------------

    async def batch(self, channel: str) -> int:
        """Claim and process one batch of ``channel``; the number of rows claimed."""
        adapter = self.routes[channel]
        limits = self.settings.dispatch.limits(channel)
        size = limits.batch_size or min(adapter.max_batch, self.settings.dispatch.batch_size)
        size = max(1, min(size, _MAX_BATCH))
        now = self.clock.now()
        rows = await asyncio.to_thread(self.outbox.claim, channel, size, now, self._lease)
        if not rows:
            return 0
        heartbeat = asyncio.create_task(self._heartbeat(rows))
        try:
            outcomes, messages, held = await asyncio.to_thread(self._prepare, rows, now)
            if messages:
                marked = await asyncio.to_thread(
                    self.outbox.mark_sending, held, self.clock.now(), self._lease
                )
                if len(marked) < len(held):
                    # Lost leases (this worker stalled past them): those rows are
                    # someone else's now — send and record nothing for them.
                    log.warning(
                        "%s: %d of %d messages were no longer leased to this worker; "
                        "left to whoever holds them",
                        channel,
                        len(held) - len(marked),
                        len(held),
                    )
                    kept = [i for i, row in enumerate(held) if row.id in marked]
                    messages = [messages[i] for i in kept]
                    held = [held[i] for i in kept]
            if messages:
                bucket = self._buckets.get(channel)
                if bucket is not None:
                    await bucket.take(len(messages))
                outcomes += await self._send(adapter, channel, messages, held)
        finally:
            heartbeat.cancel()
        await self._settle(outcomes)
        self._record(channel, outcomes)
        return len(rows)

    async def _settle(self, outcomes: list[Outcome]) -> None:
        """Record the outcomes, retrying while the database is away.

        The provider already has these messages: losing the record would turn
        them into ``unknown`` when the lease expires. ``settle`` is fenced and
        idempotent, so repeating it is safe.
        """
        for attempt in range(6):
            try:
                await asyncio.to_thread(self.outbox.settle, outcomes, self.clock.now())
                return
            except Exception as exc:
                if attempt == 5:
                    raise
                delay = 2.0**attempt
                log.error(
                    "recording %d results failed (%s); retrying in %.0f s",
                    len(outcomes),
                    _brief(exc),
                    delay,
                )
                await asyncio.sleep(delay)

    async def _heartbeat(self, rows: list[Claimed]) -> None:
        """Renew the batch's lease every third of it, for as long as the batch is ours.

        A live worker never loses a slow batch (a slow relay, a long rate-limit
        wait) to housekeeping; a dead one stops renewing and its lease expires.
        """
        period = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                # Its own thread: renewals must not queue behind planning or rendering
                # in the shared pool, or a live worker's leases lapse under load.
                await asyncio.get_running_loop().run_in_executor(
                    self._renewals, self.outbox.renew, rows, self.clock.now(), self._lease
                )
            except Exception as exc:  # the database away a moment: try again next beat
                log.warning("renewing a lease failed (%s); trying again", _brief(exc))

    def _prepare(
        self, rows: list[Claimed], now: datetime
    ) -> tuple[list[Outcome], list[Message], list[Claimed]]:
        """Gate and render a claimed batch: the outcomes decided now, and what to send."""
        campaigns = self.campaigns()
        definitions = self.definitions()
        outcomes: list[Outcome] = []
        live = []
        for row in rows:
            if row.expires_at < now:
                outcomes.append(_skip(row, "expired", "not sent before its deadline"))
            else:
                live.append(row)
        if not live:
            return outcomes, [], []
        with self.store.connect() as conn:
            reader = ContextReader(conn, definitions, now)
            people = reader.customers(r.customer_id for r in live)
            verdicts = Gate(conn, definitions, self.settings.planning, campaigns, now).check(
                live, people
            )
            passing = [r for r in live if verdicts[r.id].to is not None]
            outcomes += [
                _skip(r, verdicts[r.id].state or "canceled", verdicts[r.id].reason or "")
                for r in live
                if verdicts[r.id].to is None
            ]
            segments: dict[str, dict[str, Any]] = {}
            for name in {r.campaign for r in passing}:
                mine = [r for r in passing if r.campaign == name]
                keys = self._segment_keys(campaigns[name], mine, people)
                segments.update(
                    {
                        f"{name}\x00{customer}": value
                        for customer, value in reader.segments(
                            [r.customer_id for r in mine], campaigns[name].segment, keys
                        ).items()
                    }
                )
        messages: list[Message] = []
        held: list[Claimed] = []
        for row in passing:
            campaign = campaigns[row.campaign]
            person = people[row.customer_id]
            try:
                parts = render_message(
                    self.renderer,
                    campaign,
                    row.channel,
                    person,
                    variant=row.variant,
                    segment=segments[f"{row.campaign}\x00{row.customer_id}"],
                    outbox_id=row.id,
                )
            except RenderError as exc:
                outcomes.append(
                    Outcome(
                        row,
                        "failed",
                        "render_error",
                        error_class=type(exc).__name__,
                        error=str(exc.message),
                    )
                )
                continue
            links = MessageLinks(
                self.renderer.links, row.customer_id, row.channel, row.id, campaign.purpose
            )
            expires = (
                now + parse_duration(campaign.in_app_expires)
                if row.channel in ("in_app", "web")
                else row.expires_at
            )
            messages.append(
                Message(
                    outbox_id=row.id,
                    channel=row.channel,
                    customer_id=row.customer_id,
                    to=str(verdicts[row.id].to),
                    parts=parts,
                    campaign=row.campaign,
                    variant=row.variant,
                    locale=person.get("locale"),
                    unsubscribe_url=links.unsubscribe if row.channel == "email" else None,
                    expires_at=expires,
                    metadata={"local_hour": str(self._local_hour(person, now))},
                )
            )
            held.append(row)
        return outcomes, messages, held

    def _segment_keys(
        self, campaign: Campaign, rows: list[Claimed], people: Mapping[str, Mapping[str, Any]]
    ) -> set[str] | None:
        """The ``segment.*`` values these rows' templates use (None: all of them)."""
        kinds = {(r.channel, r.variant, people[r.customer_id].get("locale")) for r in rows}
        return segment_keys(self.renderer, campaign, kinds, cache=self._keys)

    async def _send(
        self, adapter: Channel[Any], channel: str, messages: list[Message], rows: list[Claimed]
    ) -> list[Outcome]:
        started = time.perf_counter()
        try:
            results: Sequence[Any] = await adapter.send(messages)
        except Exception as exc:  # a broken adapter must not take the worker down
            log.exception("adapter %s raised instead of returning results", adapter.name)
            results = [
                TransientError(
                    f"the adapter raised {type(exc).__name__}: {exc}",
                    outbox_id=m.outbox_id,
                    in_doubt=True,
                )
                for m in messages
            ]
        latency = (time.perf_counter() - started) * 1000 / max(len(messages), 1)
        if len(results) != len(messages):
            log.error(
                "adapter %s returned %d results for %d messages",
                adapter.name,
                len(results),
                len(messages),
            )
            results = list(results)[: len(messages)]
            results += [
                PermanentError("the adapter returned no result for it", outbox_id=m.outbox_id)
                for m in messages[len(results) :]
            ]
        now = self.clock.now()
        outcomes = []
        paused: str | None = None
        for row, message, result in zip(rows, messages, results, strict=True):
            hour = int(message.metadata.get("local_hour", "0"))
            outcome = self._outcome(row, message, result, now, latency, hour)
            if isinstance(result, ChannelPaused):
                paused = result.reason
            outcomes.append(outcome)
        if paused is not None:
            # Recorded by ``settle``, in the transaction that records these results.
            log.error(
                "channel %s PAUSED: %s — fix the configuration, then `narrowcast "
                "channels resume %s`",
                channel,
                paused,
                channel,
            )
        return outcomes

    def _outcome(
        self,
        row: Claimed,
        message: Message,
        result: Any,
        now: datetime,
        latency: float,
        hour: int,
    ) -> Outcome:
        provider = getattr(self.routes[row.channel], "name", None)
        common: dict[str, Any] = {"latency_ms": latency, "local_hour": hour}
        if isinstance(result, Receipt):
            return Outcome(
                row,
                "sent",
                "sent",
                provider=result.provider,
                provider_id=result.provider_id,
                **common,
            )
        if isinstance(result, ChannelPaused):
            return Outcome(
                row,
                "retry",
                "paused",
                provider=provider,
                error_class="ChannelPaused",
                error=result.reason,
                **common,
            )
        if isinstance(result, TransientError):
            if result.in_doubt and row.channel not in REPEATABLE:
                return Outcome(
                    row,
                    "unknown",
                    "in_doubt",
                    provider=provider,
                    error_class=type(result).__name__,
                    error=result.reason,
                    **common,
                )
            retry_at = next_attempt(self.settings.dispatch, row.attempts, now, result.retry_after)
            reason = give_up(
                self.settings.dispatch, row.attempts, row.created_at, row.expires_at, retry_at
            )
            if reason is not None:
                return Outcome(
                    row,
                    "failed",
                    "transient",
                    provider=provider,
                    error_class=type(result).__name__,
                    error=f"{result.reason} — {reason}",
                    **common,
                )
            return Outcome(
                row,
                "retry",
                "transient",
                provider=provider,
                error_class=type(result).__name__,
                error=result.reason,
                retry_at=retry_at,
                **common,
            )
        if isinstance(result, PermanentError):
            suppress_address = invalidate = None
            if result.suppress:
                if row.channel == "email":
                    suppress_address = message.to
                elif row.channel == "push":
                    invalidate = message.to
            return Outcome(
                row,
                "failed",
                "permanent",
                provider=provider,
                error_class=type(result).__name__,
                error=result.reason,
                suppress_address=suppress_address,
                invalidate_token=invalidate,
                **common,
            )
        return Outcome(
            row,
            "retry",
            "transient",
            provider=provider,
            error_class="Unknown",
            error=f"the adapter returned {type(result).__name__}",
            retry_at=next_attempt(self.settings.dispatch, row.attempts, now),
            **common,
        )

    def _record(self, channel: str, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.stats.count(channel, outcome.state)
            if outcome.state in ("failed", "unknown") or outcome.status == "paused":
                self.stats.errors.append(
                    f"{outcome.row.campaign} #{outcome.row.id} {channel}: {outcome.error}"
                )
                log.warning(
                    "message %s %s: %s",
                    outcome.row.id,
                    outcome.state,
                    outcome.error,
                    extra={
                        "campaign": outcome.row.campaign,
                        "outbox_id": outcome.row.id,
                        "channel": channel,
                        "state": outcome.state,
                    },
                )
        counts = Counter(o.state for o in outcomes)
        log.info(
            "%s: %s",
            channel,
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            extra={"channel": channel, **{f"n_{s}": n for s, n in counts.items()}},
        )
        if self.on_outcomes is not None:
            self.on_outcomes(outcomes)

    def _local_hour(self, person: Mapping[str, Any], now: datetime) -> int:
        return now.astimezone(self._zones(person.get("timezone"))).hour


def _brief(exc: BaseException) -> str:
    """One short line: driver errors carry the whole statement and its parameters."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0][:200] if first else ''}"


def _skip(row: Claimed, state: str, reason: str) -> Outcome:
    return Outcome(row, state, "skipped", error=reason, attempted=False)
