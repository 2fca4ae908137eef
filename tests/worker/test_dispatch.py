"""The worker against a misbehaving provider, in-process, with a clock the test moves.

Each test writes a small shop and campaign (``write_shop``), runs
``Worker.tick`` at fixed instants, scripts the fake SendGrid's faults, and
checks the outbox, the delivery rows and what the fake accepted.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from narrowcast.config import load_settings
from narrowcast.dispatch.clock import FixedClock
from narrowcast.store import Store
from narrowcast.store.schema import (
    campaign_runs,
    customers,
    deliveries,
    events,
    outbox,
    suppressions,
)
from narrowcast.testing import FakeSendGrid
from narrowcast.testing.server import Reply, Slow
from narrowcast.worker.worker import Worker
from tests.worker.conftest import KEY, Shop, write_shop

SIZE = 30


@pytest.fixture
def shop(store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid) -> Shop:
    os.environ["SG_KEY"] = KEY
    return write_shop(tmp_path, store, fake_sendgrid, SIZE)


def worker(shop: Shop, at: datetime) -> tuple[Worker, FixedClock]:
    clock = FixedClock(at)
    settings = load_settings(shop.config)
    return Worker(settings, shop.store, clock=clock, root=shop.folder), clock


def outbox_states(store: Store) -> Counter[str]:
    with store.connect() as conn:
        rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        return Counter({state: n for state, n in rows})


def now() -> datetime:
    return datetime.now(UTC)


def test_a_tick_sends_everything_once_and_a_second_tick_nothing(shop: Shop) -> None:
    runner, clock = worker(shop, now())
    first = runner.tick()
    assert first.runs and first.runs[0].written == SIZE
    states = outbox_states(shop.store)
    assert states["sent"] + states["holdout"] == SIZE
    again = runner.tick()
    assert not any(run.written for run in again.runs)
    received = Counter(shop.fake.outbox_ids)
    assert set(received.values()) == {1} and len(received) == states["sent"]
    with shop.store.connect() as conn:
        sent_events = conn.execute(
            select(func.count()).where(events.c.type == "message_sent")
        ).scalar_one()
        attempts = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
    assert sent_events == states["sent"] == attempts


def test_a_429_storm_is_waited_out_honouring_the_reset(shop: Shop) -> None:
    start = now()
    reset = int((start + timedelta(minutes=5)).timestamp())
    shop.fake.script(Reply(429, headers={"X-RateLimit-Reset": str(reset)}), times=3)
    runner, clock = worker(shop, start)
    runner.tick()
    assert outbox_states(shop.store)["retry"] > 0
    with shop.store.connect() as conn:
        earliest = conn.execute(
            select(func.min(outbox.c.send_at)).where(outbox.c.state == "retry")
        ).scalar_one()
    assert earliest >= start + timedelta(minutes=4)  # not before the provider's reset
    for _ in range(3):  # the storm is three 429s long
        clock.advance(timedelta(minutes=10))
        runner.tick()
    states = outbox_states(shop.store)
    assert states["sent"] + states["holdout"] == SIZE
    assert set(Counter(shop.fake.outbox_ids).values()) == {1}


def test_server_errors_are_retried_with_backoff_then_given_up(shop: Shop) -> None:
    campaign = shop.folder / "campaigns" / "blast.toml"
    campaign.write_text(campaign.read_text().replace('expires = "2h"', 'expires = "2d"'))
    shop.fake.always(Reply(500))
    runner, clock = worker(shop, now())
    for _ in range(10):  # max_attempts is 6
        runner.tick()
        clock.advance(timedelta(hours=1))
    states = outbox_states(shop.store)
    assert states["failed"] + states["holdout"] == SIZE
    with shop.store.connect() as conn:
        reasons = set(
            conn.execute(select(outbox.c.last_error).where(outbox.c.state == "failed")).scalars()
        )
        attempts = set(
            conn.execute(select(outbox.c.attempts).where(outbox.c.state == "failed")).scalars()
        )
    assert attempts == {6}
    assert all("gave up after 6 attempts" in r for r in reasons), reasons
    assert shop.fake.outbox_ids == []


def test_retries_stop_at_the_message_deadline(shop: Shop) -> None:
    shop.fake.always(Reply(503))
    runner, clock = worker(shop, now())
    for _ in range(4):
        runner.tick()
        clock.advance(timedelta(hours=1))  # the deadline is 2 hours
    with shop.store.connect() as conn:
        reasons = set(
            conn.execute(select(outbox.c.last_error).where(outbox.c.state == "failed")).scalars()
        )
    assert reasons and all("would fall after the message's deadline" in r for r in reasons)


def test_a_timeout_leaves_email_unknown_never_resent(shop: Shop) -> None:
    config = shop.config.read_text().replace(
        'api_key_env = "SG_KEY"', 'api_key_env = "SG_KEY"\ntimeout = 0.5'
    )
    shop.config.write_text(config)
    shop.fake.always(Slow(2.0))
    runner, clock = worker(shop, now())
    runner.tick()
    states = outbox_states(shop.store)
    assert states["unknown"] + states["holdout"] == SIZE, states
    shop.fake.always(None)
    clock.advance(timedelta(minutes=10))
    runner.tick()
    assert outbox_states(shop.store)["sent"] == 0  # the provider may have them: never again


def test_a_refused_key_pauses_the_channel_and_burns_nothing(shop: Shop, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SG_KEY", "SG.revoked")
    runner, clock = worker(shop, now())
    runner.tick()
    states = outbox_states(shop.store)
    assert states["failed"] == 0 and states["retry"] + states["holdout"] == SIZE, states
    assert "email" in runner.outbox.paused()
    clock.advance(timedelta(minutes=5))
    runner.tick()  # paused: nothing is claimed
    with shop.store.connect() as conn:
        attempts = set(conn.execute(select(outbox.c.attempts)).scalars())
    assert attempts == {0}, "a paused channel does not use up attempts"
    monkeypatch.setenv("SG_KEY", KEY)
    assert runner.outbox.resume("email")
    fixed, clock = worker(shop, clock.now() + timedelta(minutes=1))
    fixed.tick()
    states = outbox_states(shop.store)
    assert states["sent"] + states["holdout"] == SIZE


def test_a_template_that_fails_for_one_customer_fails_only_that_row(shop: Shop) -> None:
    html = shop.folder / "templates" / "blast" / "email.html.j2"
    html.write_text("<p>Your code: {{ customer.voucher }}</p>")
    with shop.store.begin() as conn:
        conn.execute(update(customers).values(attributes={"voucher": "WIN20"}))
        conn.execute(update(customers).where(customers.c.id == "c000003").values(attributes={}))
    runner, _ = worker(shop, now())
    runner.tick()
    with shop.store.connect() as conn:
        failed = conn.execute(
            select(outbox.c.customer_id, outbox.c.last_error).where(outbox.c.state == "failed")
        ).all()
    if not failed:
        pytest.skip("c000003 drew the holdout group")
    assert [c for c, _ in failed] == ["c000003"]
    assert "email.html.j2:1" in failed[0][1] and "voucher" in failed[0][1]
    states = outbox_states(shop.store)
    assert states["sent"] == SIZE - states["holdout"] - 1


def test_an_unsubscribe_after_planning_stops_the_message(shop: Shop) -> None:
    campaign = shop.folder / "campaigns" / "blast.toml"
    text = campaign.read_text().replace('expires = "2h"', 'expires = "2d"')
    campaign.write_text(text + 'send_time = "23:59"\n')
    runner, clock = worker(shop, now())
    runner.tick()
    assert outbox_states(shop.store)["sent"] == 0  # planned for 23:59 local
    with shop.store.begin() as conn:
        conn.execute(
            insert(suppressions).values(
                channel="email",
                address="customer1@example.com",
                reason="unsubscribed",
                source="test",
                created_at=clock.now(),
            )
        )
    clock.advance(timedelta(days=1))
    runner.tick()
    with shop.store.connect() as conn:
        state = conn.execute(
            select(outbox.c.state, outbox.c.last_error).where(outbox.c.customer_id == "c000001")
        ).one()
    if state[0] == "holdout":
        pytest.skip("c000001 drew the holdout group")
    assert state[0] == "suppressed" and "unsubscribed" in state[1]


def test_a_broken_edit_keeps_the_last_good_campaign(shop: Shop) -> None:
    runner, _ = worker(shop, now())
    assert "blast" in runner.library.campaigns
    campaign = shop.folder / "campaigns" / "blast.toml"
    campaign.write_text(campaign.read_text().replace('channel = ["email"]', 'channel = ["emial"]'))
    assert runner.library.reload(force=True)
    assert "blast" in runner.library.campaigns  # still running as it was
    assert any("unknown channel 'emial'" in p for p in runner.library.problems)
    runner.tick()
    assert outbox_states(shop.store)["sent"] > 0


def test_a_clock_jump_past_the_deadline_expires_instead_of_sending_late(shop: Shop) -> None:
    campaign = shop.folder / "campaigns" / "blast.toml"
    campaign.write_text(campaign.read_text() + 'send_time = "23:59"\n')
    runner, clock = worker(shop, now())
    runner.tick()
    clock.advance(timedelta(days=3))  # the 2 h deadline is long gone
    runner.tick()
    states = outbox_states(shop.store)
    assert states["sent"] == 0 and states["expired"] + states["holdout"] == SIZE


def test_status_and_report_tell_what_happened(shop: Shop) -> None:
    from narrowcast.worker.report import report
    from narrowcast.worker.status import status

    goal = shop.folder / "campaigns" / "blast.toml"
    goal.write_text(goal.read_text() + 'goal = "order"\nattribution_window = "3d"\n')
    runner, clock = worker(shop, now())
    runner.tick()
    with shop.store.connect() as conn:
        sent = conn.execute(
            select(outbox.c.id, outbox.c.customer_id).where(outbox.c.state == "sent")
        ).all()
    later = clock.now() + timedelta(hours=2)
    with shop.store.begin() as conn:
        for outbox_id, customer in sent[:4]:
            conn.execute(
                insert(events).values(
                    customer_id=customer,
                    type="message_clicked",
                    ts=later,
                    properties={"outbox_id": outbox_id, "campaign": "blast", "channel": "email"},
                )
            )
        for _, customer in sent[:2]:
            conn.execute(
                insert(events).values(
                    customer_id=customer,
                    type="order",
                    ts=later,
                    value=50.0,
                    properties={"value": 50.0},
                )
            )
    campaigns = runner.library.campaigns
    with shop.store.connect() as conn:
        found = report(conn, campaigns)
        now_status = status(conn, campaigns, clock.now())
    (row,) = found.rows
    assert (row["sent"], row["clicked"], row["converted"], row["revenue"]) == (
        len(sent),
        4,
        2,
        100.0,
    )
    comparison = found.holdouts["blast"]
    assert comparison.treated_converted == 2 and comparison.control_converted == 0
    assert now_status.queue["email"]["sent"] == len(sent)
    assert "(holdout)" in now_status.text() or "" in now_status.queue


def test_a_tick_at_a_fixed_instant_from_the_cli(shop: Shop) -> None:
    result = shop.run("tick", "--at", now().isoformat())
    assert result.returncode == 0, result.stderr
    assert "1 run(s) planned" in result.stdout and "email: " in result.stdout
    status = shop.run("status", "--json")
    assert status.returncode == 0 and '"sent"' in status.stdout
    assert shop.run("report").returncode == 0


def test_a_batch_whose_lease_lapsed_and_was_claimed_again_is_not_sent(shop: Shop) -> None:
    """A worker stalls past its lease between claim and send; the sweep hands the
    rows back and the same worker claims them again in another batch. Only the
    newer claim may send: the stale one must find nothing to mark ``sending``."""
    at = now()
    w, clock = worker(shop, at)
    w.plan()
    lease = timedelta(seconds=3)
    stale = w.outbox.claim("email", 10, at, lease)
    assert len(stale) == 10
    later = at + timedelta(seconds=10)
    assert w.outbox.release_expired_leases(later) == (10, 0)
    # Every due row: which of equal send times a claim takes first is not specified.
    fresh = w.outbox.claim("email", SIZE, later, lease)
    assert {r.id for r in stale} <= {r.id for r in fresh}
    assert w.outbox.mark_sending(stale, later, lease) == set()
    assert w.outbox.mark_sending(fresh, later, lease) == {r.id for r in fresh}
    # The stale batch's heartbeat must not keep the newer claim's lease alive either.
    w.outbox.renew(stale, later + timedelta(minutes=5), timedelta(hours=1))
    with shop.store.connect() as conn:
        until = conn.execute(
            select(func.max(outbox.c.lease_until)).where(outbox.c.id.in_([r.id for r in fresh]))
        ).scalar_one()
    assert until is not None and until.replace(tzinfo=UTC) <= later + lease


def test_a_run_that_failed_half_written_is_planned_again_without_repeats(shop: Shop) -> None:
    """The database went away while the plan was being written: the run is marked
    failed with part of its rows in the outbox. The next pass takes the run over
    and writes only what is missing."""
    runner, clock = worker(shop, now())
    runner.plan()
    with shop.store.begin() as conn:
        ids = sorted(conn.execute(select(outbox.c.id)).scalars())
        conn.execute(outbox.delete().where(outbox.c.id.in_(ids[: len(ids) // 2])))
        conn.execute(update(campaign_runs).values(state="failed", error="OperationalError: gone"))
    clock.advance(timedelta(seconds=5))
    again = runner.plan()
    assert [run.written for run in again] == [len(ids) - len(ids) // 2]
    with shop.store.connect() as conn:
        run = conn.execute(select(campaign_runs.c.state, campaign_runs.c.error)).one()
        customers_planned = conn.execute(
            select(func.count(), func.count(outbox.c.customer_id.distinct()))
        ).one()
    assert tuple(run) == ("planned", None)
    assert tuple(customers_planned) == (SIZE, SIZE)
    runner.tick()
    assert set(Counter(shop.fake.outbox_ids).values()) == {1}


def test_templates_get_the_segment_values_they_use_through_includes(shop: Shop) -> None:
    """The dispatcher builds only the ``segment.*`` values the templates read —
    following includes — so a value used only in a partial must still arrive."""
    folder = shop.folder / "templates"
    (folder / "partials").mkdir()
    (folder / "partials" / "cart.html.j2").write_text(
        "<p>cart={{ segment.cart.name }} rfm_m={{ segment.rfm_m }}</p>"
    )
    (folder / "blast" / "email.html.j2").write_text("{% include 'partials/cart.html.j2' %}")
    at = now()
    with shop.store.begin() as conn:
        conn.execute(
            insert(events),
            [
                {
                    "customer_id": f"c{n:06d}",
                    "type": kind,
                    "ts": at - timedelta(days=2, hours=n),
                    "value": 10.0 * (n + 1) if kind == "order" else None,
                    "properties": {"name": f"Lamp {n}"} if kind == "cart_add" else {},
                }
                for n in range(SIZE)
                for kind in ("cart_add", "order")
            ],
        )
    runner, _ = worker(shop, at)
    runner.tick()
    html = {
        int(p["custom_args"]["outbox_id"]): a.body["content"][-1]["value"]
        for a in shop.fake.accepted
        for p in a.body["personalizations"]
    }
    assert html
    with shop.store.connect() as conn:
        ids = dict(conn.execute(select(outbox.c.id, outbox.c.customer_id)).all())
    for outbox_id, body in html.items():
        n = int(ids[outbox_id][1:])
        assert f"cart=Lamp {n} " in body
        # rfm_m: the spend quintile among 30 buyers spending 10, 20, … 300.
        assert f"rfm_m={n * 5 // SIZE + 1}<" in body, body
