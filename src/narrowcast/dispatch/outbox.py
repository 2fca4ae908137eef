"""The outbox: every message's state, moved one transaction at a time.

States and who moves a row between them::

    planned ──claim──► claimed ──mark sending──► sending ──settle──► sent
       ▲                  │                         │                 failed
       │   lease expired  │                         │                 retry ──► (claimed again)
       └──────────────────┘                         │                 suppressed
                                                    │                 canceled / expired
                               lease expired ───────┴──► unknown (or planned, see below)
    holdout   never sent; the control group

The delivery guarantee, and how this module keeps it:

* **A row reaches the provider at most once**, except rows whose request was
  in flight at the instant a worker died. A row is ``sending`` — committed —
  before its provider call; if its lease expires in that state nobody can know
  whether the provider got it, so it becomes ``unknown`` and is not sent again
  (email and webhook messages; the provider's event webhook may still report
  it). Channels where a repeat is harmless are requeued instead: in-app and
  web messages are written keyed by the outbox id (a repeat writes nothing),
  and push carries the outbox id as FCM's collapse key (a repeat replaces).
* A ``claimed`` row whose lease expires was never handed to a provider: it
  goes back to ``planned`` and another worker sends it.
* Every final update is **fenced**: ``WHERE id = … AND attempts = … AND
  lease_owner = …`` (the claim that leased the row), so a worker that lost its
  lease (paused, partitioned) cannot overwrite what the next owner did.
* Leases are counted in the **database's time**, never a worker's clock (see
  ``clock.py``).
* Planning writes rows under a unique ``dedupe_key`` (campaign, occurrence or
  trigger, customer) with ``ON CONFLICT DO NOTHING``: planning twice, or on two
  workers at once, creates nothing twice.

Claims take rows with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers share the queue without waiting for each other; SQLite has a
single writer (``BEGIN IMMEDIATE``) and one worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    func,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from narrowcast.planning.planner import PlanEntry, Summary
from narrowcast.store import Store
from narrowcast.store.bulk import among, dialect_insert, insert_columns
from narrowcast.store.schema import (
    Instant,
    campaign_runs,
    channel_pauses,
    deliveries,
    device_tokens,
    events,
    outbox,
    suppressions,
)

CLAIMABLE = ("planned", "retry")
# A repeat of these is harmless (keyed writes; FCM collapse key): requeue after a crash.
REPEATABLE = frozenset({"in_app", "web", "push"})
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker holds the lease of."""

    id: int
    campaign: str
    customer_id: str
    variant: str | None
    channel: str
    purpose: str
    priority: int
    attempts: int
    send_at: datetime
    expires_at: datetime
    trigger_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed row ends its attempt."""

    row: Claimed
    state: str
    """sent | retry | failed | suppressed | canceled | expired | unknown | planned."""
    status: str
    """What the delivery row records: sent, transient, permanent, paused, skipped, …"""
    provider: str | None = None
    provider_id: str | None = None
    error_class: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    latency_ms: float | None = None
    suppress_address: str | None = None
    """An address to suppress (a bounced email address)."""
    invalidate_token: str | None = None
    local_hour: int | None = None
    attempted: bool = True
    """False when no provider was called (skipped before sending): no delivery row."""


CLAIMED_COLUMNS = tuple(outbox.c[name] for name in Claimed.__dataclass_fields__)
"""The outbox columns a ``Claimed`` is made of, in its fields' order."""


def _claim_statement() -> Any:
    """``Outbox.claim``'s statement, built once: an idle loop runs it every second, and
    building its CTEs was most of an idle worker's CPU time."""
    o = outbox
    channel = bindparam("claim_channel", type_=String)
    now = bindparam("claim_now", type_=Instant)
    limit = bindparam("claim_limit", type_=Integer)
    paused = select(channel_pauses.c.channel).where(channel_pauses.c.channel == channel)
    arms = [
        select(o.c.id, o.c.send_at)
        .where(o.c.state == state, o.c.channel == channel, o.c.send_at <= now, ~paused.exists())
        .order_by(o.c.send_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte(f"due_{state}")
        for state in CLAIMABLE
    ]
    merged = union_all(*(select(arm.c.id, arm.c.send_at) for arm in arms)).subquery()
    due = select(merged.c.id).order_by(merged.c.send_at).limit(limit)
    return (
        update(o)
        .where(o.c.id.in_(due.scalar_subquery()))
        .values(
            state="claimed",
            lease_owner=bindparam("claim_owner", type_=String),
            lease_until=bindparam("claim_until", type_=Instant),
            attempts=o.c.attempts + 1,
            updated_at=now,
        )
        .returning(*CLAIMED_COLUMNS)
    )


_CLAIM = _claim_statement()


class Outbox:
    """Outbox operations on one store, on behalf of worker ``owner``."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner

    # --- planning ----------------------------------------------------------------------

    def open_run(
        self, campaign: str, key: str, kind: str, occurrence: datetime, now: datetime
    ) -> int | None:
        """Create the run (campaign, key); None when it exists already (planned elsewhere)."""
        values = {
            "campaign": campaign,
            "key": key,
            "kind": kind,
            "occurrence": occurrence,
            "state": "planning",
            "created_at": now,
            "heartbeat_at": now,
        }
        with self.store.begin() as conn:
            inserted = conn.execute(
                _insert_ignoring(conn, campaign_runs, ["campaign", "key"])
                .values(**values)
                .returning(campaign_runs.c.id)
            ).scalar_one_or_none()
        return int(inserted) if inserted is not None else None

    def resume_run(self, campaign: str, key: str, now: datetime, stale: timedelta) -> int | None:
        """Take over a run that failed (the database away mid-write…) or was left in
        ``planning`` by a worker that died; None if there is none.

        A worker that died is one whose run has shown no sign of life (the
        heartbeat each written batch leaves) for ``stale``: a live worker still
        writing a big audience keeps its run. Planning again is safe anyway:
        outbox rows are keyed on (campaign, occurrence, customer), so what the
        first attempt wrote is not written twice.
        """
        runs = campaign_runs
        with self.store.begin() as conn:
            row = conn.execute(
                update(runs)
                .where(
                    runs.c.campaign == campaign,
                    runs.c.key == key,
                    (runs.c.state == "failed")
                    | (
                        (runs.c.state == "planning")
                        & (func.coalesce(runs.c.heartbeat_at, runs.c.created_at) < now - stale)
                    ),
                )
                .values(
                    state="planning", created_at=now, heartbeat_at=now, finished_at=None, error=None
                )
                .returning(campaign_runs.c.id)
            ).scalar_one_or_none()
        return int(row) if row is not None else None

    def write(
        self,
        run_id: int,
        campaign: str,
        purpose: str,
        priority: int,
        entries: Iterable[PlanEntry],
        now: datetime,
    ) -> int:
        """Write plan entries in batches (each its own transaction); returns rows written.

        Each batch also moves the run's heartbeat (``now`` plus the time spent
        writing), so that other workers see the run is alive.

        On PostgreSQL, once this run has written more rows than the outbox's
        statistics say it holds (a first big campaign: none), the outbox is
        analyzed at once instead of when autovacuum gets to it, up to a minute
        later (or never, where it is off). Until then the dispatch loops' lookups
        of a batch's rows were planned for a table of a few rows with no known
        distribution: scans of the whole outbox for every batch, and cost
        estimates high enough for JIT compilation of each lookup.
        """
        started = time.monotonic()
        written = 0
        known = self._row_estimate()
        batch: list[dict[str, Any]] = []
        for entry in entries:
            batch.append(
                {
                    "run_id": run_id,
                    "campaign": campaign,
                    "customer_id": entry.customer_id,
                    "dedupe_key": entry.dedupe_key,
                    "variant": entry.variant,
                    "channel": entry.channel,
                    "purpose": purpose,
                    "priority": priority,
                    "state": "holdout" if entry.holdout else "planned",
                    "send_at": entry.send_at,
                    "expires_at": entry.expires_at,
                    "trigger_at": entry.trigger_at,
                    "choice_probability": entry.probability,
                    "assignment": entry.assignment,
                    "variant_probability": entry.variant_probability,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) >= _BATCH:
                beat = now + timedelta(seconds=time.monotonic() - started)
                written += self._write(batch, run_id, beat)
                batch = []
                if known is not None and written > known:
                    self._analyze()
                    known = None
        if batch:
            written += self._write(
                batch, run_id, now + timedelta(seconds=time.monotonic() - started)
            )
        if known is not None and written > max(known, _BATCH):
            self._analyze()
        return written

    def _row_estimate(self) -> float | None:
        """How many rows PostgreSQL's statistics say the outbox has (None: SQLite)."""
        if self.store.dialect != "postgresql":
            return None
        with self.store.connect() as conn:
            estimate = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'outbox'::regclass"
            ).scalar_one()
        return max(float(estimate), 0.0)  # -1: never analyzed

    def _analyze(self) -> None:
        with self.store.begin() as conn:
            conn.exec_driver_sql("ANALYZE outbox")

    def beat(self, run_id: int, at: datetime) -> None:
        """Record that the worker planning ``run_id`` is alive at ``at``."""
        with self.store.begin() as conn:
            conn.execute(
                update(campaign_runs).where(campaign_runs.c.id == run_id).values(heartbeat_at=at)
            )

    def _write(self, rows: list[dict[str, Any]], run_id: int, beat: datetime) -> int:
        with self.store.begin() as conn:
            conn.execute(
                update(campaign_runs).where(campaign_runs.c.id == run_id).values(heartbeat_at=beat)
            )
            # Counts only the rows inserted: a repeat (same dedupe key) counts none.
            return insert_columns(conn, outbox, rows, ignoring_conflicts_on=["dedupe_key"])

    def finish_run(
        self, run_id: int, summary: Summary, now: datetime, error: str | None = None
    ) -> None:
        dropped = summary.counts["audience"] - summary.planned - summary.counts["holdout"]
        with self.store.begin() as conn:
            conn.execute(
                update(campaign_runs)
                .where(campaign_runs.c.id == run_id)
                .values(
                    state="failed" if error else "planned",
                    planned=summary.planned,
                    holdout=summary.counts["holdout"],
                    dropped=max(dropped, 0),
                    finished_at=now,
                    error=error,
                )
            )

    # --- dispatch ----------------------------------------------------------------------

    def claim(self, channel: str, limit: int, now: datetime, lease: timedelta) -> list[Claimed]:
        """Lease up to ``limit`` due rows of ``channel`` (oldest send time first).

        Each claimable state is read on its own, in the order of the (state,
        channel, send_at) index, up to ``limit`` rows: ``state IN ('planned',
        'retry')`` gives PostgreSQL two ranges of that index and no order, and
        it sorted every due row of the channel — 85,000 of them, on disk, for
        each batch of a big campaign — to take the first 500. The two are then
        merged by send time; the rows locked but not taken are free again when
        the claim commits.

        A paused channel (``pause``) claims nothing: the check is part of this
        statement rather than a query of its own before every batch.
        """
        values = {
            "claim_channel": channel,
            "claim_limit": limit,
            "claim_now": now,
            "claim_owner": self.owner,
            "claim_until": now + lease,
        }
        with self.store.begin() as conn:
            rows = conn.execute(_CLAIM, values).all()
        return sorted((Claimed(*row) for row in rows), key=lambda r: r.id)

    def mark_sending(self, rows: Sequence[Claimed], now: datetime, lease: timedelta) -> set[int]:
        """Commit ``sending`` before the provider call: the line the guarantee is drawn at.

        Returns the ids actually moved; only those may be sent. A row whose lease
        lapsed (a stalled worker) may have been claimed again since, even by this
        very worker in another batch — the ``attempts`` fence tells the two apart.
        """
        if not rows:
            return set()
        with self.store.begin() as conn:
            marked: set[int] = set()
            for attempts, ids in _by_attempts(rows).items():
                marked.update(
                    conn.execute(
                        update(outbox)
                        .where(self._held(conn, attempts, ids))
                        .values(state="sending", lease_until=now + lease, updated_at=now)
                        .returning(outbox.c.id)
                    ).scalars()
                )
        return marked

    def _held(self, conn: Connection, attempts: int, ids: Sequence[int]) -> ColumnElement[bool]:
        """The fence of every update of a claimed batch: these rows, still under this claim.

        ``lease_owner`` and ``attempts`` name one claim: a new claim bumps
        ``attempts``, and every move out of ``claimed`` / ``sending`` (settling,
        an expired lease) clears ``lease_owner`` — so rows matching both are in
        ``claimed`` or ``sending`` of this very claim, and the state is not
        tested again. Testing it let PostgreSQL find the rows through the
        (state, …) index, whose entries for rows claimed earlier in a big
        campaign are dead until vacuumed: a bitmap scan of 40,000–80,000 of
        them per batch instead of 500 primary-key probes.
        """
        return and_(
            among(conn, outbox.c.id, ids),
            outbox.c.attempts == attempts,
            outbox.c.lease_owner == self.owner,
        )

    def renew(self, rows: Sequence[Claimed], now: datetime, lease: timedelta) -> None:
        """Extend the lease of rows this worker still holds (a heartbeat while it sends)."""
        if not rows:
            return
        with self.store.begin() as conn:
            for attempts, ids in _by_attempts(rows).items():
                conn.execute(
                    update(outbox)
                    .where(self._held(conn, attempts, ids))
                    .values(lease_until=now + lease)
                )

    def settle(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record every outcome — state, delivery row, suppressions, events — in one transaction."""
        if not outcomes:
            return
        with self.store.begin() as conn:
            # Outcomes of one batch fall into a few identical groups (all "sent" by one
            # request, all "retry" at one time…): one fenced UPDATE per group.
            groups: dict[tuple[Any, ...], list[int]] = {}
            for o in outcomes:
                attempts_after = (
                    o.row.attempts if o.attempted and o.status != "paused" else o.row.attempts - 1
                )
                key = (
                    o.row.attempts,
                    o.state,
                    o.retry_at,
                    o.provider,
                    o.provider_id,
                    o.error,
                    attempts_after,
                )
                groups.setdefault(key, []).append(o.row.id)
            for key, ids in groups.items():
                attempts, state, retry_at, provider, provider_id, error, after = key
                values: dict[str, Any] = {
                    "state": state,
                    "provider": provider,
                    "provider_id": provider_id,
                    "last_error": error,
                    "sent_at": now if state == "sent" else None,
                    "attempts": after,
                    "lease_owner": None,
                    "lease_until": None,
                    "updated_at": now,
                }
                if retry_at is not None:
                    values["send_at"] = retry_at
                conn.execute(update(outbox).where(self._held(conn, attempts, ids)).values(**values))
            attempted = [o for o in outcomes if o.attempted]
            if attempted:
                insert_columns(
                    conn,
                    deliveries,
                    [
                        {
                            "outbox_id": o.row.id,
                            "attempt": o.row.attempts,
                            "started_at": now,
                            "finished_at": now,
                            "latency_ms": o.latency_ms,
                            "channel": o.row.channel,
                            "provider": o.provider,
                            "provider_id": o.provider_id,
                            "status": o.status,
                            "error_class": o.error_class,
                            "error_text": o.error,
                        }
                        for o in attempted
                    ],
                )
            sent = [o for o in outcomes if o.state == "sent"]
            if sent:
                insert_columns(conn, events, [_sent_event(o, now) for o in sent])
            addresses = {o.suppress_address for o in outcomes if o.suppress_address}
            if addresses:
                conn.execute(
                    _insert_ignoring(conn, suppressions, ["channel", "address"]),
                    [
                        {
                            "channel": "email",
                            "address": address.lower(),
                            "reason": "hard_bounce",
                            "source": "provider",
                            "created_at": now,
                        }
                        for address in sorted(addresses)
                    ],
                )
            tokens = sorted({o.invalidate_token for o in outcomes if o.invalidate_token})
            if tokens:
                conn.execute(
                    update(device_tokens)
                    .where(among(conn, device_tokens.c.token, tokens))
                    .values(invalidated_at=now)
                )
            # Refused credentials pause the channel with the results that say so: a
            # separate transaction could fail after the provider answered and leave
            # these rows in ``sending`` (``unknown`` once the lease expires).
            paused = {o.row.channel: o.error or "" for o in outcomes if o.status == "paused"}
            for channel, reason in paused.items():
                self._pause(conn, channel, reason, now)

    # --- housekeeping ------------------------------------------------------------------

    def release_expired_leases(self, now: datetime) -> tuple[int, int]:
        """Expired leases: ``claimed`` rows back to ``planned``; ``sending`` ones to ``unknown``
        (or back to ``planned`` where a repeat is harmless). Returns (requeued, unknown)."""
        o = outbox
        expired = and_(o.c.lease_until.is_not(None), o.c.lease_until < now)
        with self.store.begin() as conn:
            requeued = conn.execute(
                update(o)
                .where(
                    expired,
                    (o.c.state == "claimed")
                    | ((o.c.state == "sending") & o.c.channel.in_(sorted(REPEATABLE))),
                )
                .values(state="planned", lease_owner=None, lease_until=None, updated_at=now)
                .returning(o.c.id)
            ).all()
            unknown = conn.execute(
                update(o)
                .where(expired, o.c.state == "sending")
                .values(
                    state="unknown",
                    lease_owner=None,
                    lease_until=None,
                    last_error="the worker stopped while the provider was being called",
                    updated_at=now,
                )
                .returning(o.c.id)
            ).all()
        return len(requeued), len(unknown)

    def expire_overdue(self, now: datetime) -> int:
        """Rows never claimed before their deadline become ``expired``: never sent late."""
        with self.store.begin() as conn:
            rows = conn.execute(
                update(outbox)
                .where(outbox.c.state.in_(CLAIMABLE), outbox.c.expires_at < now)
                .values(state="expired", last_error="not sent before its deadline", updated_at=now)
                .returning(outbox.c.id)
            ).all()
        return len(rows)

    # --- paused channels -----------------------------------------------------------------

    def pause(self, channel: str, reason: str, now: datetime) -> None:
        """Stop sending ``channel`` until ``resume``; its messages wait, unburnt."""
        with self.store.begin() as conn:
            self._pause(conn, channel, reason, now)

    def _pause(self, conn: Connection, channel: str, reason: str, now: datetime) -> None:
        # An upsert: two loops of a worker (or two workers) refused at the same moment
        # both pause; a DELETE then INSERT made the second fail on the key.
        values = {"reason": reason[:2000], "since": now, "paused_by": self.owner}
        statement = dialect_insert(conn, channel_pauses).values(channel=channel, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["channel"], set_=values))

    def resume(self, channel: str) -> bool:
        with self.store.begin() as conn:
            gone = conn.execute(
                delete(channel_pauses)
                .where(channel_pauses.c.channel == channel)
                .returning(channel_pauses.c.channel)
            ).all()
        return bool(gone)

    def paused(self) -> dict[str, tuple[str, datetime]]:
        with self.store.connect() as conn:
            rows = conn.execute(
                select(channel_pauses.c.channel, channel_pauses.c.reason, channel_pauses.c.since)
            ).all()
        return {channel: (reason, since) for channel, reason, since in rows}

    def due_channels(self, now: datetime) -> list[str]:
        """Channels that have rows to send now."""
        with self.store.connect() as conn:
            rows = conn.execute(
                select(outbox.c.channel)
                .where(outbox.c.state.in_(CLAIMABLE), outbox.c.send_at <= now)
                .group_by(outbox.c.channel)
            ).all()
        return sorted(str(r[0]) for r in rows if r[0] is not None)


def _by_attempts(rows: Sequence[Claimed]) -> dict[int, list[int]]:
    """Row ids grouped by the claim they belong to (a batch almost always has one)."""
    groups: dict[int, list[int]] = {}
    for row in rows:
        groups.setdefault(row.attempts, []).append(row.id)
    return groups


def _insert_ignoring(conn: Connection, table: Any, keys: list[str]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)


def _sent_event(outcome: Outcome, now: datetime) -> dict[str, Any]:
    row = outcome.row
    properties = {
        "outbox_id": row.id,
        "campaign": row.campaign,
        "variant": row.variant,
        "channel": row.channel,
        "local_hour": None if outcome.local_hour is None else str(outcome.local_hour),
        "provider": outcome.provider,
    }
    return {
        "event_id": f"sent:{row.id}",
        "customer_id": row.customer_id,
        "type": "message_sent",
        "ts": now,
        "value": None,
        "properties": properties,
    }


__all__ = ["CLAIMABLE", "CLAIMED_COLUMNS", "REPEATABLE", "Claimed", "Outbox", "Outcome"]
