"""Crash safety: workers killed with SIGKILL mid-campaign lose nothing and send nothing twice.

A real ``narrowcast run`` subprocess sends a 20,000-customer campaign to a fake
SendGrid on 127.0.0.1 that records every personalization it accepts. The test
kills the worker with ``kill -9`` at random moments (several times), starts it
again, lets the last one finish, and then checks the guarantee documented in
``narrowcast.dispatch.outbox``:

* no message reached the provider twice;
* every eligible customer has exactly one outbox row, and every row is ``sent``
  (received exactly once) or ``unknown`` (in flight at a kill: received at
  most once);
* the ``unknown`` rows are bounded by what can be in flight: kills × channel
  concurrency × batch size;
* nobody in the holdout group received anything.

On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs, outbox
from narrowcast.testing import FakeSendGrid
from narrowcast.testing.server import Slow
from tests.conftest import PG_ADMIN_URL
from tests.worker.conftest import Shop, write_shop

SIZE = 20_000
KILLS = 5
CONCURRENCY, BATCH = 2, 500
PENDING = ("planned", "claimed", "sending", "retry")


def states(store: Store) -> Counter[str]:
    with store.connect() as conn:
        rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
    return Counter({state: n for state, n in rows})


def finished(store: Store) -> bool:
    """Every run is fully planned and no outbox row is still waiting to be sent.

    Outbox rows alone are not enough: a worker killed while planning leaves a
    run half written, and until the next planning pass finishes it the rows
    already there may all be sent while the rest of the audience has no rows yet.
    """
    with store.connect() as conn:
        runs = Counter(
            dict(
                conn.execute(
                    select(campaign_runs.c.state, func.count()).group_by(campaign_runs.c.state)
                ).all()
            )
        )
    if not runs or set(runs) != {"planned"}:
        return False
    found = states(store)
    return sum(found.values()) > 0 and not any(found[s] for s in PENDING)


def run_with_kills(shop: Shop, seed: int) -> int:
    """Kill once while planning, then ``KILLS - 1`` times while messages are being sent."""
    rng = random.Random(seed)
    deadline = time.monotonic() + 420
    # Each request takes a moment at the provider, so a kill can land mid-request.
    shop.fake.always(Slow(0.4))
    kills = 0
    while kills < KILLS:
        assert time.monotonic() < deadline, f"out of time: {states(shop.store)}"
        worker = shop.worker("run")
        if kills == 0:
            time.sleep(rng.uniform(0.5, 2.0))  # during planning
        else:
            received = len(shop.fake.accepted)
            while len(shop.fake.accepted) == received and time.monotonic() < deadline:
                if worker.poll() is not None or finished(shop.store):
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.4))  # while the next batches are in flight
        worker.kill()  # SIGKILL: no cleanup, no graceful stop
        worker.wait()
        kills += 1
    shop.fake.always(None)
    worker = shop.worker("run")
    while not finished(shop.store):
        assert time.monotonic() < deadline, f"out of time: {states(shop.store)}"
        assert worker.poll() is None, (shop.folder / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    return kills


def test_killed_workers_lose_nothing_and_send_nothing_twice(
    store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid
) -> None:
    shop = write_shop(tmp_path, store, fake_sendgrid, SIZE)
    kills = run_with_kills(shop, seed=11)
    received = Counter(fake_sendgrid.outbox_ids)
    with store.connect() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.customer_id, outbox.c.state)).all()
    by_state: dict[str, set[int]] = {}
    for row_id, _, state in rows:
        by_state.setdefault(state, set()).add(row_id)
    duplicates = {i: n for i, n in received.items() if n > 1}
    assert not duplicates, f"messages received more than once: {list(duplicates.items())[:10]}"
    customers = Counter(customer for _, customer, _ in rows)
    assert len(customers) == SIZE and set(customers.values()) == {1}, "one row per customer"
    assert set(by_state) <= {"sent", "unknown", "holdout"}, Counter(s for *_, s in rows)
    sent, unknown, holdout = (by_state.get(s, set()) for s in ("sent", "unknown", "holdout"))
    assert all(received[i] == 1 for i in sent), "every sent row reached the provider once"
    assert not (set(received) - sent - unknown), "the provider got only rows we sent"
    assert not (set(received) & holdout), "nobody in the holdout group got anything"
    assert len(unknown) <= kills * CONCURRENCY * BATCH, "unknown is bounded by what is in flight"
    # The global control group (5 %), then the campaign's 10 % of the rest: 14.5 % of 20,000.
    assert 2_400 <= len(holdout) <= 3_400
    print(  # the test's output shows what the kills did
        f"\n{store.dialect}: {kills} kills, {len(sent):,} sent, {len(unknown):,} unknown "
        f"(in flight at a kill), {len(holdout):,} holdout, {len(received):,} received"
    )


@pytest.mark.postgres
def test_the_database_going_away_loses_nothing(
    postgres_store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid
) -> None:
    """The server drops every connection of the worker twice mid-campaign; it recovers."""
    shop = write_shop(tmp_path, postgres_store, fake_sendgrid, 4_000)
    fake_sendgrid.always(Slow(0.3))
    worker = shop.worker("run")
    database = postgres_store.url.database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 300
    try:
        for _ in range(2):
            received = len(fake_sendgrid.accepted)
            while len(fake_sendgrid.accepted) == received:
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.05)
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
            postgres_store.engine.dispose()  # the test's own pooled connections died too
        fake_sendgrid.always(None)
        while not finished(postgres_store):
            assert time.monotonic() < deadline, states(postgres_store)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        admin.dispose()
    received_ids = Counter(fake_sendgrid.outbox_ids)
    assert set(received_ids.values()) == {1}, "nothing twice"
    found = states(postgres_store)
    assert set(found) <= {"sent", "unknown", "holdout"}
    with postgres_store.connect() as conn:
        sent = set(conn.execute(select(outbox.c.id).where(outbox.c.state == "sent")).scalars())
    assert sent <= set(received_ids), "every sent row reached the provider"
    assert found["sent"] + found["unknown"] + found["holdout"] == 4_000, "nothing lost"
