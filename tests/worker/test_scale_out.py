"""Three ``narrowcast run`` processes on one PostgreSQL share a campaign: every message once.

No coordinator but the database: the run key makes one worker plan the
occurrence, ``SKIP LOCKED`` leases spread the batches over all three, and the
fake provider must see each message exactly once.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from narrowcast.store import Store
from narrowcast.store.schema import deliveries, outbox
from narrowcast.testing import FakeSendGrid
from narrowcast.testing.server import Slow
from tests.worker.conftest import write_shop
from tests.worker.test_crash import finished, states

SIZE = 6_000


@pytest.mark.postgres
def test_three_workers_send_every_message_once(
    postgres_store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid
) -> None:
    shop = write_shop(tmp_path, postgres_store, fake_sendgrid, SIZE)
    fake_sendgrid.always(Slow(0.2))  # slow enough that every worker gets batches
    workers = [shop.worker("run", log=tmp_path / f"worker-{n}.log") for n in range(3)]
    deadline = time.monotonic() + 300
    try:
        while not finished(postgres_store):
            assert time.monotonic() < deadline, f"out of time: {states(postgres_store)}"
            assert all(w.poll() is None for w in workers)
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    assert codes == [0, 0, 0]
    received = Counter(fake_sendgrid.outbox_ids)
    assert set(received.values()) == {1}, "nothing twice"
    with postgres_store.connect() as conn:
        found = states(postgres_store)
        owners = conn.execute(
            select(func.count(func.distinct(deliveries.c.provider_id))).select_from(deliveries)
        ).scalar_one()
        sent = set(conn.execute(select(outbox.c.id).where(outbox.c.state == "sent")).scalars())
    assert set(found) == {"sent", "holdout"}
    assert sent == set(received), "everything sent, and only that"
    assert owners > 1
    logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(3)]
    busy = sum(1 for log in logs if "email: " in log and " sent" in log)
    assert busy >= 2, "the batches were spread over the workers"
