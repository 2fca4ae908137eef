"""A run being planned is taken over only when its worker stopped showing signs of life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from narrowcast.dispatch.outbox import Outbox
from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs

STALE = timedelta(minutes=10)


def test_a_live_planner_keeps_its_run_and_a_dead_one_loses_it(store: Store) -> None:
    store.upgrade()
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    planner = Outbox(store, "worker-a")
    other = Outbox(store, "worker-b")
    run = planner.open_run("blast", "k1", "scheduled", start, start)
    assert run is not None
    assert other.open_run("blast", "k1", "scheduled", start, start) is None

    # Still writing 9 minutes in: 11 minutes after the start, the run is alive.
    planner.beat(run, start + timedelta(minutes=9))
    assert other.resume_run("blast", "k1", start + timedelta(minutes=11), STALE) is None

    # Silent for longer than STALE since its last heartbeat: taken over.
    assert other.resume_run("blast", "k1", start + timedelta(minutes=20), STALE) == run
    with store.connect() as conn:
        beat = conn.execute(select(campaign_runs.c.heartbeat_at)).scalar_one()
    assert beat == start + timedelta(minutes=20)
