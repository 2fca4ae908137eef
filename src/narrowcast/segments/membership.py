"""Segment membership over time: snapshots that record changes, and the flow between them.

A snapshot evaluates every named segment at one instant and writes only what
changed since the previous one: a ``segment_transitions`` row per customer
who entered or exited, the new ``segment_members`` state, and one
``segment_evaluations`` row per segment (instant, size, entered, exited).
Storage therefore grows with changes, not with size × evaluations, and
campaigns can trigger on "entered segment S" by reading transitions.

Membership at any past instant is reconstructed from the transitions: a
customer is in S at t when their latest transition for S at or before t is
an ``enter``. ``flow`` compares two instants and counts, for every pair of
segments (A, B), the customers who left A and joined B in between — the
"how customers move between segments" matrix — plus those who came from, or
went to, no segment at all.

Each segment's snapshot is one transaction, so a worker writing messages
never waits long, and a crash half-way leaves every segment either fully at
the new instant or fully at the old one. On PostgreSQL a transaction-level
advisory lock makes concurrent snapshots from several workers take turns; a
snapshot older than the segment's latest one is skipped, because history only
moves forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Select,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)

from narrowcast.segments.definitions import Definitions
from narrowcast.segments.evaluation import Evaluation
from narrowcast.store import Store
from narrowcast.store.schema import (
    Instant,
    segment_evaluations,
    segment_members,
    segment_transitions,
)

_SNAPSHOT_LOCK = 0x6E632D7365676D  # "nc-segm"; the same in every worker
NONE = "(none)"
"""The row / column of ``flow`` for customers in no segment."""


@dataclass(frozen=True)
class SegmentChange:
    segment: str
    size: int
    entered: int
    exited: int
    skipped: bool = False
    """True when the segment already had a snapshot at or after this instant."""


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    changes: tuple[SegmentChange, ...]

    def summary(self) -> str:
        done = [c for c in self.changes if not c.skipped]
        moved = sum(c.entered + c.exited for c in done)
        text = (
            f"snapshot at {self.at:%Y-%m-%d %H:%M:%S} UTC: {len(done)} segments, "
            f"{moved:,} customers entered or exited"
        )
        skipped = [c.segment for c in self.changes if c.skipped]
        if skipped:
            text += f"; skipped {len(skipped)} already snapshotted at or after this instant"
        return text


def snapshot(
    store: Store,
    definitions: Definitions,
    now: datetime,
    segments: Iterable[str] | None = None,
    on_segment: Callable[[SegmentChange], None] | None = None,
) -> Snapshot:
    """Evaluate ``segments`` (default: all) at ``now`` and record who entered and exited."""
    at = now.astimezone(UTC)
    names = list(segments) if segments is not None else list(definitions.segments)
    changes = []
    for name in names:
        with store.begin() as conn:
            change = _snapshot_one(conn, definitions, name, at)
        changes.append(change)
        if on_segment is not None:
            on_segment(change)
    return Snapshot(at, tuple(changes))


def _snapshot_one(
    conn: Connection, definitions: Definitions, name: str, at: datetime
) -> SegmentChange:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SNAPSHOT_LOCK})")
    latest = conn.execute(
        select(func.max(segment_evaluations.c.evaluated_at)).where(
            segment_evaluations.c.segment == name
        )
    ).scalar_one()
    if latest is not None and latest >= at:
        return SegmentChange(name, 0, 0, 0, skipped=True)

    evaluation = Evaluation(definitions, conn, at)
    rule = evaluation.rule(name)
    _fresh(conn, _NOW)
    conn.execute(insert(_NOW).from_select(["customer_id"], evaluation.query(rule)))
    is_member = exists().where(
        segment_members.c.segment == name, segment_members.c.customer_id == _NOW.c.customer_id
    )
    evaluation_id = conn.execute(
        insert(segment_evaluations)
        .values(
            segment=name,
            evaluated_at=at,
            rule_hash=hashlib.sha256(definitions.segments[name].where.encode()).hexdigest(),
            size=0,
            entered=0,
            exited=0,
        )
        .returning(segment_evaluations.c.id)
    ).scalar_one()
    columns = ["segment", "customer_id", "change", "at", "evaluation_id"]
    stamp = (literal(at, Instant), literal(evaluation_id))
    conn.execute(
        insert(segment_transitions).from_select(
            columns,
            select(literal(name), _NOW.c.customer_id, literal("enter"), *stamp).where(
                not_(is_member)
            ),
        )
    )
    gone = and_(
        segment_members.c.segment == name,
        not_(exists().where(_NOW.c.customer_id == segment_members.c.customer_id)),
    )
    conn.execute(
        insert(segment_transitions).from_select(
            columns,
            select(literal(name), segment_members.c.customer_id, literal("exit"), *stamp).where(
                gone
            ),
        )
    )
    conn.execute(delete(segment_members).where(gone))
    conn.execute(
        insert(segment_members).from_select(
            ["segment", "customer_id", "since"],
            select(literal(name), _NOW.c.customer_id, literal(at, Instant)).where(not_(is_member)),
        )
    )
    size = conn.execute(select(func.count()).select_from(_NOW)).scalar_one()
    # Counted, not taken from rowcount: drivers differ in what INSERT … SELECT reports.
    t = segment_transitions
    changes: dict[str, int] = dict(
        conn.execute(
            select(t.c.change, func.count())
            .where(t.c.evaluation_id == evaluation_id)
            .group_by(t.c.change)
        ).all()
    )
    entered, exited = changes.get("enter", 0), changes.get("exit", 0)
    conn.execute(
        update(segment_evaluations)
        .where(segment_evaluations.c.id == evaluation_id)
        .values(size=size, entered=entered, exited=exited)
    )
    _fresh(conn, _NOW)
    return SegmentChange(name, int(size), int(entered), int(exited))


# --- membership at an instant, and the flow between two ----------------------------------

_scratch = MetaData()
# Per-connection scratch tables; temporary, so workers never see each other's.
_NOW = Table("nc_segment_now", _scratch, Column("customer_id", String(128), primary_key=True))
_BEFORE = Table(
    "nc_members_before",
    _scratch,
    Column("segment", String(100), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
)
_AFTER = Table(
    "nc_members_after",
    _scratch,
    Column("segment", String(100), primary_key=True),
    Column("customer_id", String(128), primary_key=True),
)


def _fresh(conn: Connection, table: Table) -> None:
    """Create the temporary ``table`` on this connection if needed, and empty it."""
    columns = ", ".join(
        f"{c.name} VARCHAR({c.type.length})"  # type: ignore[attr-defined]
        for c in table.columns
    )
    keys = ", ".join(c.name for c in table.primary_key.columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {table.name} ({columns}, PRIMARY KEY ({keys}))"
    )
    conn.execute(delete(table))


def members_at(at: datetime) -> Select[tuple[str, str]]:
    """``SELECT segment, customer_id`` of every membership at instant ``at``."""
    t = segment_transitions
    later = t.alias("later")
    superseded = exists().where(
        later.c.segment == t.c.segment,
        later.c.customer_id == t.c.customer_id,
        later.c.at > t.c.at,
        later.c.at <= literal(at, Instant),
    )
    return select(t.c.segment, t.c.customer_id).where(
        t.c.change == "enter", t.c.at <= literal(at, Instant), not_(superseded)
    )


@dataclass(frozen=True)
class Flow:
    """Customers who moved between segments from ``since`` to ``until``."""

    since: datetime
    until: datetime
    moved: dict[tuple[str, str], int] = field(default_factory=dict)
    """(from, to) → customers; ``NONE`` for "in no segment"."""
    stayed: dict[str, int] = field(default_factory=dict)
    """segment → customers in it at both instants."""

    def segments(self) -> list[str]:
        names = {a for a, _ in self.moved} | {b for _, b in self.moved} | set(self.stayed)
        return sorted(names - {NONE}) + ([NONE] if NONE in names else [])


def snapshot_instants(conn: Connection) -> list[datetime]:
    """Every instant a snapshot was taken at, oldest first."""
    column = segment_evaluations.c.evaluated_at
    return list(conn.execute(select(column).distinct().order_by(column)).scalars())


def flow(conn: Connection, since: datetime, until: datetime) -> Flow:
    """The transition matrix between the memberships at ``since`` and at ``until``.

    A customer who left A and joined B counts in (A, B) — for every such pair,
    since segments overlap. One who joined B while in no segment before counts
    in (NONE, B); one who left A for no segment, in (A, NONE).
    """
    for table, at in ((_BEFORE, since), (_AFTER, until)):
        _fresh(conn, table)
        conn.execute(insert(table).from_select(["segment", "customer_id"], members_at(at)))
    before, after = _BEFORE, _AFTER
    left = (
        select(before.c.segment, before.c.customer_id)
        .where(
            not_(
                exists().where(
                    after.c.segment == before.c.segment, after.c.customer_id == before.c.customer_id
                )
            )
        )
        .subquery("left_")
    )
    joined = (
        select(after.c.segment, after.c.customer_id)
        .where(
            not_(
                exists().where(
                    before.c.segment == after.c.segment, before.c.customer_id == after.c.customer_id
                )
            )
        )
        .subquery("joined")
    )
    result = Flow(since, until)
    pairs = (
        select(left.c.segment, joined.c.segment, func.count())
        .select_from(left.join(joined, left.c.customer_id == joined.c.customer_id))
        .group_by(left.c.segment, joined.c.segment)
    )
    for a, b, n in conn.execute(pairs):
        result.moved[(a, b)] = n
    nowhere_before = not_(exists().where(before.c.customer_id == joined.c.customer_id))
    for b, n in conn.execute(
        select(joined.c.segment, func.count()).where(nowhere_before).group_by(joined.c.segment)
    ):
        result.moved[(NONE, b)] = n
    nowhere_after = not_(exists().where(after.c.customer_id == left.c.customer_id))
    for a, n in conn.execute(
        select(left.c.segment, func.count()).where(nowhere_after).group_by(left.c.segment)
    ):
        result.moved[(a, NONE)] = n
    both = (
        select(before.c.segment, func.count())
        .select_from(
            before.join(
                after,
                and_(
                    after.c.segment == before.c.segment,
                    after.c.customer_id == before.c.customer_id,
                ),
            )
        )
        .group_by(before.c.segment)
    )
    for a, n in conn.execute(both):
        result.stayed[a] = n
    for table in (_BEFORE, _AFTER):
        conn.execute(delete(table))
    return result
