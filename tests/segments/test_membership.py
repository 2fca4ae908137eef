"""Membership over time: snapshots record changes only; flow counts who moved where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from narrowcast.segments.definitions import Definitions, SegmentDefinition
from narrowcast.segments.membership import NONE, flow, members_at, snapshot, snapshot_instants
from narrowcast.store import Store
from narrowcast.store.schema import segment_evaluations, segment_members, segment_transitions
from tests.segments.reference import World

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def definitions(**rules: str) -> Definitions:
    return Definitions(
        {
            name: SegmentDefinition(name, where, "", f"test:{name}", builtin=False)
            for name, where in rules.items()
        }
    )


SEGMENTS = definitions(
    buyers="ever('order', within='7d')",
    browsers="ever('page_view', within='7d') and not ever('order', within='7d')",
    spain="country == 'ES'",
)


def shop() -> World:
    world = World()
    world.customer("ana", country="ES")
    world.customer("ben", country="ES")
    world.customer("cruz", country="PT")
    world.customer("dora", country="PT")
    # By T0: ana buys, ben browses, cruz and dora do nothing.
    world.event("ana", "order", T0 - DAY)
    world.event("ben", "page_view", T0 - DAY)
    # By T0 + 5 days: ben buys (browser → buyer), cruz browses (none → browser).
    world.event("ben", "order", T0 + 4 * DAY)
    world.event("cruz", "page_view", T0 + 4 * DAY)
    return world


def transitions(store: Store) -> set[tuple[str, str, str, datetime]]:
    t = segment_transitions
    with store.connect() as conn:
        rows = conn.execute(select(t.c.segment, t.c.customer_id, t.c.change, t.c.at)).all()
    return {tuple(row) for row in rows}  # type: ignore[misc]


def test_snapshots_record_entries_and_exits_only(store: Store) -> None:
    with store.begin() as conn:
        shop().write(conn)
    first = snapshot(store, SEGMENTS, T0)
    assert {(c.segment, c.size, c.entered, c.exited) for c in first.changes} == {
        ("buyers", 1, 1, 0),
        ("browsers", 1, 1, 0),
        ("spain", 2, 2, 0),
    }
    # Nothing changed a second later: no transitions, but the evaluation is recorded.
    again = snapshot(store, SEGMENTS, T0 + timedelta(seconds=1))
    assert all(c.entered == c.exited == 0 for c in again.changes)
    assert len(transitions(store)) == 4

    later = T0 + 5 * DAY
    snapshot(store, SEGMENTS, later)
    first_ones = {
        ("buyers", "ana", "enter", T0),
        ("browsers", "ben", "enter", T0),
        ("spain", "ana", "enter", T0),
        ("spain", "ben", "enter", T0),
    }
    # ana's order is 6 days old: still a buyer. ben bought (browser → buyer); cruz browsed.
    assert transitions(store) - first_ones == {
        ("buyers", "ben", "enter", later),
        ("browsers", "ben", "exit", later),
        ("browsers", "cruz", "enter", later),
    }
    with store.connect() as conn:
        members = set(
            conn.execute(select(segment_members.c.segment, segment_members.c.customer_id))
        )
        sizes = conn.execute(
            select(segment_evaluations.c.segment, segment_evaluations.c.size).where(
                segment_evaluations.c.evaluated_at == later
            )
        ).all()
    assert members == {
        ("buyers", "ana"),
        ("buyers", "ben"),
        ("browsers", "cruz"),
        ("spain", "ana"),
        ("spain", "ben"),
    }
    assert dict(sizes) == {"buyers": 2, "browsers": 1, "spain": 2}


def test_a_snapshot_older_than_the_last_one_is_skipped(store: Store) -> None:
    with store.begin() as conn:
        shop().write(conn)
    snapshot(store, SEGMENTS, T0 + 5 * DAY)
    result = snapshot(store, SEGMENTS, T0)
    assert all(c.skipped for c in result.changes)
    assert "skipped 3" in result.summary()
    with store.connect() as conn:
        count = conn.execute(select(func.count()).select_from(segment_evaluations)).scalar_one()
    assert count == 3


def test_membership_at_any_instant_and_the_flow_between_two(store: Store) -> None:
    with store.begin() as conn:
        shop().write(conn)
    later = T0 + 5 * DAY
    exits_ana = T0 + 9 * DAY  # ana's order leaves the 7-day window
    for at in (T0, later, exits_ana):
        snapshot(store, SEGMENTS, at)
    with store.connect() as conn:
        at_t0 = set(conn.execute(members_at(T0)))
        between = set(conn.execute(members_at(T0 + 2 * DAY)))
        assert snapshot_instants(conn) == [T0, later, exits_ana]
    assert (
        at_t0
        == between
        == {
            ("buyers", "ana"),
            ("browsers", "ben"),
            ("spain", "ana"),
            ("spain", "ben"),
        }
    )
    with store.begin() as conn:
        moved = flow(conn, T0, later)
    assert moved.moved == {("browsers", "buyers"): 1, (NONE, "browsers"): 1}
    assert moved.stayed == {"buyers": 1, "spain": 2}
    with store.begin() as conn:
        moved = flow(conn, later, exits_ana)
    # ana left buyers but is still in spain (so not to "(none)"); ben, who bought at
    # T0 + 4 days, is still a buyer; cruz's page view is 5 days old: still a browser.
    assert moved.moved == {}
    with store.begin() as conn:
        moved = flow(conn, T0, exits_ana)
    assert moved.moved == {("browsers", "buyers"): 1, (NONE, "browsers"): 1}
    assert moved.segments() == ["browsers", "buyers", "spain", NONE]
