"""``narrowcast report``'s campaign sections on a real store: intent to treat by assignment,
the sample-ratio check, IPW per variant, last-touch attribution and the distributions.

The outbox and the events are written row by row with known outcomes, so every number
the report shows is checked against the same numbers worked out here from plain lists.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select

from narrowcast.campaigns.model import Campaign, Variant
from narrowcast.config import load_settings
from narrowcast.dispatch.clock import FixedClock
from narrowcast.optimize.uplift import Moments, ipw_rate, mean_difference, rate_difference
from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs, customers, events, outbox
from narrowcast.testing import FakeSendGrid
from narrowcast.worker.report import Report, report
from narrowcast.worker.report_blocks import (
    Attribution,
    Distribution,
    IntentToTreat,
    SampleRatioCheck,
)
from narrowcast.worker.report_variants import VariantRates
from narrowcast.worker.worker import Worker
from tests.worker.conftest import KEY, write_shop

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def campaign(name: str = "spring", **fields: Any) -> Campaign:
    settings: dict[str, Any] = {
        "where": "True",
        "at": NOW,
        "goal": "order",
        "attribution_window": "3d",
    }
    settings |= fields
    if settings["goal"] is None:
        del settings["attribution_window"]  # a window without a goal is refused
    return Campaign(name=name, **settings)


@dataclass
class Log:
    """Writes customers, outbox rows and events with one connection."""

    conn: Connection
    runs: dict[str, int]
    known: set[str]

    def customer(self, customer_id: str) -> None:
        if customer_id in self.known:
            return
        self.known.add(customer_id)
        self.conn.execute(
            insert(customers).values(
                id=customer_id, created_at=NOW - DAY, updated_at=NOW - DAY, attributes={}
            )
        )

    def row(
        self,
        customer_id: str,
        *,
        name: str = "spring",
        assignment: str | None = "treated",
        state: str = "sent",
        variant: str | None = None,
        probability: float | None = None,
        channel: str | None = "email",
        send_at: datetime = NOW,
    ) -> int:
        self.customer(customer_id)
        if name not in self.runs:
            self.runs[name] = self.conn.execute(
                insert(campaign_runs).returning(campaign_runs.c.id),
                {
                    "campaign": name,
                    "key": NOW.isoformat(),
                    "kind": "scheduled",
                    "occurrence": NOW,
                    "state": "planned",
                    "created_at": NOW,
                },
            ).scalar_one()
        if state == "holdout":
            channel = None
        row_id: int = self.conn.execute(
            insert(outbox).returning(outbox.c.id),
            {
                "run_id": self.runs[name],
                "campaign": name,
                "customer_id": customer_id,
                "dedupe_key": f"{name}|{send_at.isoformat()}|{customer_id}",
                "variant": variant,
                "channel": channel,
                "purpose": "marketing",
                "priority": 0,
                "state": state,
                "send_at": send_at,
                "expires_at": send_at + DAY,
                "assignment": assignment,
                "variant_probability": probability,
                "created_at": send_at,
                "updated_at": send_at,
                "sent_at": send_at if state == "sent" else None,
            },
        ).scalar_one()
        return row_id

    def event(self, customer_id: str, kind: str, ts: datetime, value: float | None = None) -> None:
        self.customer(customer_id)
        properties = {} if value is None else {"value": value}
        self.conn.execute(
            insert(events).values(
                customer_id=customer_id, type=kind, ts=ts, value=value, properties=properties
            )
        )

    def sent(self, row_id: int, customer_id: str, local_hour: str | None) -> None:
        properties: dict[str, Any] = {"outbox_id": row_id, "campaign": "spring"}
        if local_hour is not None:
            properties["local_hour"] = local_hour
        self.conn.execute(
            insert(events).values(
                customer_id=customer_id, type="message_sent", ts=NOW, properties=properties
            )
        )


@pytest.fixture
def log(store: Store) -> Iterator[Log]:
    with store.begin() as conn:
        yield Log(conn, {}, set())


def build(store: Store, *found: Campaign, since: datetime | None = None) -> Report:
    with store.connect() as conn:
        return report(conn, {c.name: c for c in found}, since)


def strict_json(found: Report) -> Any:
    """What ``report --json`` prints must be plain JSON (no NaN, no Infinity)."""
    return json.loads(json.dumps(found.as_json(), allow_nan=False))


# --- intent to treat --------------------------------------------------------------------------


def write_groups(log: Log, legacy: bool) -> None:
    """40 treated (30 sent, 10 failed), 10 in the holdout, 5 in the global control.

    Converted within 3 days of the planned send: 6 sent treated rows (50 each), one
    failed treated row (20: intent to treat counts it), one holdout row (30), one
    control row (10). An order 4 days later and one an hour before do not count.
    """
    treated = None if legacy else "treated"
    holdout = None if legacy else "holdout"
    for n in range(40):
        log.row(f"t{n:02d}", assignment=treated, state="sent" if n < 30 else "failed")
    for n in range(10):
        log.row(f"h{n}", assignment=holdout, state="holdout")
    for n in range(5):
        log.row(f"g{n}", assignment="control", state="holdout")
    for n in range(6):
        log.event(f"t{n:02d}", "order", NOW + HOUR, 50.0)
    log.event("t30", "order", NOW + 2 * HOUR, 20.0)
    log.event("t06", "order", NOW + 4 * DAY, 99.0)
    log.event("t07", "order", NOW - HOUR, 99.0)
    log.event("h0", "order", NOW + DAY, 30.0)
    log.event("g0", "order", NOW + HOUR, 10.0)
    log.event("t08", "page_view", NOW + HOUR)


@pytest.mark.parametrize("legacy", [False, True], ids=["assigned", "before-0007"])
def test_intent_to_treat_by_assignment(store: Store, log: Log, legacy: bool) -> None:
    write_groups(log, legacy)
    log.conn.commit()
    found = build(store, campaign(holdout=0.2))

    (row,) = found.rows  # the holdout and control groups are not message rows
    assert (row["planned"], row["sent"], row["failed"], row["converted"]) == (40, 30, 10, 6)
    itt = found.campaigns["spring"].block("intent_to_treat")
    assert isinstance(itt, IntentToTreat)
    assert list(itt.groups) == ["treated", "holdout", "control"]
    treated = [50.0] * 6 + [20.0] + [0.0] * 33
    holdout = [30.0] + [0.0] * 9
    control = [10.0] + [0.0] * 4
    assert (itt.groups["treated"].assigned, itt.groups["treated"].converted) == (40, 7)
    assert (itt.groups["holdout"].assigned, itt.groups["holdout"].converted) == (10, 1)
    assert (itt.groups["control"].assigned, itt.groups["control"].converted) == (5, 1)
    assert itt.groups["treated"].revenue == Moments.of(treated)

    vs_holdout, vs_control = itt.vs_holdout, itt.vs_control
    assert vs_holdout is not None and vs_control is not None
    assert vs_holdout.conversion == rate_difference(7, 40, 1, 10)
    assert vs_holdout.revenue == mean_difference(Moments.of(treated), Moments.of(holdout))
    assert vs_control.conversion == rate_difference(7, 40, 1, 5)
    assert vs_control.revenue == mean_difference(Moments.of(treated), Moments.of(control))
    # What the HTML report reads: the comparison with the campaign's holdout.
    assert found.holdouts["spring"] is vs_holdout
    assert vs_holdout.interval == pytest.approx(
        (vs_holdout.conversion.interval.low, vs_holdout.conversion.interval.high)  # type: ignore[union-attr]
    )

    text = found.text()
    assert "intent to treat" in text
    assert "uplift vs holdout:\n    conversion        +7.50 pp, 95 % interval [" in text
    assert "uplift vs global control:\n    conversion        -2.50 pp" in text
    assert "Newcombe" in text and "Welch" in text
    data = strict_json(found)["campaigns"]["spring"]["intent_to_treat"]
    assert data["groups"]["treated"] == {
        "assigned": 40,
        "converted": 7,
        "rate": 7 / 40,
        "revenue": 320.0,
        "revenue_per_customer": 8.0,
    }
    assert data["uplift"]["holdout"]["difference"] == pytest.approx(0.075)
    assert data["uplift"]["control"]["interval_95"] == pytest.approx(
        vs_control.conversion.interval.as_list()  # type: ignore[union-attr]
    )
    revenue = data["uplift"]["holdout"]["revenue_per_customer"]
    assert revenue["difference"] == pytest.approx(8.0 - 3.0) and revenue["method"] == "Welch"


def test_without_a_global_control_group_there_is_no_comparison_with_it(
    store: Store, log: Log
) -> None:
    for n in range(9):
        log.row(f"t{n}")
    log.row("h0", assignment="holdout", state="holdout")
    log.conn.commit()
    itt = build(store, campaign(holdout=0.1)).campaigns["spring"].block("intent_to_treat")
    assert isinstance(itt, IntentToTreat)
    assert itt.vs_control is None and itt.vs_holdout is not None
    assert "global control" not in "\n".join(itt.lines())


def test_without_a_holdout_the_comparison_says_so(store: Store, log: Log) -> None:
    for n in range(5):
        log.row(f"t{n}")
    log.conn.commit()
    found = build(store, campaign())
    assert found.campaigns["spring"].block("sample_ratio") is None  # holdout 0, none drawn
    assert found.holdouts["spring"].interval is None
    assert "uplift vs holdout: no holdout rows" in found.text()
    strict_json(found)


def test_a_campaign_without_a_goal_shows_its_groups_only(store: Store, log: Log) -> None:
    for n in range(9):
        log.row(f"t{n}")
    log.row("h0", assignment="holdout", state="holdout")
    log.conn.commit()
    found = build(store, campaign(goal=None, holdout=0.1))
    section = found.campaigns["spring"]
    assert [b.key for b in section.blocks] == ["sample_ratio", "intent_to_treat", "distribution"]
    assert "assigned: treated 9, holdout 1 (no goal" in found.text()
    assert found.holdouts == {}


# --- sample ratio mismatch --------------------------------------------------------------------


def test_a_sample_ratio_mismatch_is_shouted(store: Store, log: Log) -> None:
    """A 10 % holdout that came out 50 in 250: p ≈ 1e-7."""
    for n in range(200):
        log.row(f"t{n:03d}")
    for n in range(50):
        log.row(f"h{n:02d}", assignment="holdout", state="holdout")
    for n in range(30):
        log.row(f"g{n:02d}", assignment="control", state="holdout")  # not in the check
    log.conn.commit()
    found = build(store, campaign(holdout=0.1))
    check = found.campaigns["spring"].blocks[0]
    assert isinstance(check, SampleRatioCheck)
    assert check.found.observed == (200, 50) and check.found.mismatch
    assert check.found.p_value is not None and check.found.p_value < 1e-6
    text = found.campaigns["spring"].text().splitlines()
    assert text[1].startswith("  !! SAMPLE RATIO MISMATCH: 200 treated / 50 holdout")
    assert "expected 10.0% holdout (225 / 25)" in text[1]
    data = strict_json(found)["campaigns"]["spring"]["sample_ratio"]
    assert data["mismatch"] is True and data["observed"] == {"treated": 200, "holdout": 50}


def test_a_fair_split_passes_the_check(store: Store, log: Log) -> None:
    for n in range(182):
        log.row(f"t{n:03d}")
    for n in range(18):
        log.row(f"h{n:02d}", assignment="holdout", state="holdout")
    log.conn.commit()
    found = build(store, campaign(holdout=0.1))
    check = found.campaigns["spring"].block("sample_ratio")
    assert isinstance(check, SampleRatioCheck) and not check.found.mismatch
    assert "MISMATCH" not in found.text() and ", OK" in found.text()


def test_holdout_rows_without_a_configured_holdout_are_a_mismatch(store: Store, log: Log) -> None:
    for n in range(20):
        log.row(f"t{n:02d}")
    log.row("h0", assignment="holdout", state="holdout")
    log.conn.commit()
    found = build(store, campaign(holdout=0.0))
    assert "!! SAMPLE RATIO MISMATCH" in found.text()
    data = strict_json(found)["campaigns"]["spring"]["sample_ratio"]
    assert data["mismatch"] is True and data["chi_square"] is None and data["p_value"] == 0.0


# --- variants and IPW -------------------------------------------------------------------------


def test_variant_rates_are_weighted_by_the_logged_probability(store: Store, log: Log) -> None:
    """The allocator moved from 50/50 to 25/75 towards b; conversion was logged per row."""
    arms: dict[str, list[tuple[float, int]]] = {
        "a": [(0.5, int(n < 3)) for n in range(30)] + [(0.25, int(n < 4)) for n in range(10)],
        "b": [(0.5, int(n < 6)) for n in range(30)] + [(0.75, int(n < 3)) for n in range(30)],
    }
    for variant, rows in arms.items():
        for n, (probability, converted) in enumerate(rows):
            customer = f"{variant}{n:03d}"
            log.row(customer, variant=variant, probability=probability)
            if converted:
                log.event(customer, "order", NOW + HOUR, 10.0)
    log.row("h0", assignment="holdout", state="holdout")
    log.conn.commit()
    variants = (Variant(name="a"), Variant(name="b"))
    found = build(store, campaign(holdout=0.01, variants=variants))
    block = found.campaigns["spring"].block("variants")
    assert isinstance(block, VariantRates)
    for arm in block.arms:
        expected = ipw_rate([p for p, _ in arms[arm.name]], [y for _, y in arms[arm.name]])
        assert arm.found.rate == pytest.approx(expected.rate)
        assert arm.found.interval is not None and expected.interval is not None
        assert arm.found.interval.as_list() == pytest.approx(expected.interval.as_list())
        assert (arm.found.rows, arm.found.converted) == (expected.rows, expected.converted)
        assert arm.unknown_probability == 0
    a = block.arms[0]
    assert a.found.raw == pytest.approx(7 / 40) and a.found.rate == pytest.approx(22 / 100)
    text = found.text()
    assert "IPW rate" in text and "22.00%" in text and "17.50%" in text
    data = strict_json(found)["campaigns"]["spring"]["variants"]
    assert data["method"].startswith("IPW")
    assert [arm["variant"] for arm in data["arms"]] == ["a", "b"]
    assert data["arms"][0]["ipw_rate"] == pytest.approx(0.22)


def test_unknown_probabilities_are_the_variants_share(store: Store, log: Log) -> None:
    """Rows from before 0007: fixed weights, so the weighted rate is the raw one."""
    for n in range(30):
        log.row(f"x{n:02d}", assignment=None, variant="x")
        if n < 6:
            log.event(f"x{n:02d}", "order", NOW + HOUR)
    for n in range(10):
        log.row(f"y{n:02d}", assignment=None, variant="y")
        if n < 1:
            log.event(f"y{n:02d}", "order", NOW + HOUR)
    log.conn.commit()
    variants = (Variant(name="x", weight=3), Variant(name="y"))
    block = build(store, campaign(variants=variants)).campaigns["spring"].block("variants")
    assert isinstance(block, VariantRates)
    x, y = block.arms
    assert x.found.rate == pytest.approx(0.2) and y.found.rate == pytest.approx(0.1)
    assert (x.unknown_probability, y.unknown_probability) == (30, 10)
    assert "40 row(s) without a logged probability" in "\n".join(block.lines())


# --- attribution ------------------------------------------------------------------------------


def test_last_touch_attribution_is_separate_from_uplift(store: Store, log: Log) -> None:
    # c1: another campaign's message came later: its conversion is not ours.
    log.row("c1")
    log.row("c1", name="other", send_at=NOW + HOUR)
    log.event("c1", "order", NOW + 2 * HOUR, 70.0)
    # c2: ours was the last one, a day before.
    log.row("c2")
    log.event("c2", "order", NOW + DAY, 40.0)
    # c3: ours was the last one, but the order came after the window.
    log.row("c3")
    log.event("c3", "order", NOW + 4 * DAY, 80.0)
    # c4: the later message of another campaign was never sent: ours is still the last touch.
    log.row("c4")
    log.row("c4", name="other", state="failed", send_at=NOW + HOUR)
    log.event("c4", "order", NOW + 2 * HOUR, 15.0)
    # c5: two orders after our message: two conversions.
    log.row("c5")
    log.event("c5", "order", NOW + HOUR, 5.0)
    log.event("c5", "order", NOW + 2 * HOUR, 5.0)
    # c6: in the holdout, never touched; c7: ordered before the message.
    log.row("c6", assignment="holdout", state="holdout")
    log.event("c6", "order", NOW + HOUR, 60.0)
    log.row("c7")
    log.event("c7", "order", NOW - HOUR, 90.0)
    log.conn.commit()
    found = build(store, campaign(holdout=0.1), campaign("other"))
    ours = found.campaigns["spring"].block("attribution")
    assert isinstance(ours, Attribution)
    assert (ours.conversions, ours.revenue) == (4, 65.0)
    theirs = found.campaigns["other"].block("attribution")
    assert isinstance(theirs, Attribution) and (theirs.conversions, theirs.revenue) == (1, 70.0)
    lines = found.campaigns["spring"].text()
    assert "attribution (last touch, not uplift): 4 'order' event(s), revenue 65.00" in lines
    assert "uplift" not in lines.split("attribution")[1].replace("not uplift", "")
    data = strict_json(found)["campaigns"]["spring"]["attribution"]
    assert data == {
        "model": "last touch",
        "goal": "order",
        "window": "3d",
        "conversions": 4,
        "revenue": 65.0,
    }


# --- distributions and scope ------------------------------------------------------------------


def test_channels_planned_and_local_hours_sent(store: Store, log: Log) -> None:
    for n, hour in enumerate(["9", "9", "14", None]):
        row_id = log.row(f"e{n}")
        log.sent(row_id, f"e{n}", hour)
    log.row("e9", state="planned")
    log.row("p0", channel="push", state="expired")
    log.row("h0", assignment="holdout", state="holdout")
    other = log.row("o0", name="other")
    log.sent(other, "o0", "22")
    log.conn.commit()
    found = build(store, campaign(holdout=0.1), campaign("other"))
    block = found.campaigns["spring"].block("distribution")
    assert isinstance(block, Distribution)
    assert block.channels == {"email": 5, "push": 1}
    assert block.local_hours == {"09": 2, "14": 1, "unknown": 1}
    text = found.campaigns["spring"].text()
    assert "planned by channel: email 5 (83%), push 1 (17%)" in text
    assert "09:00         2 " + "█" * 30 in text and "unknown         1" in text
    data = strict_json(found)["campaigns"]["spring"]["distribution"]
    assert data == {"channels": {"email": 5, "push": 1}, "local_hours": block.local_hours}


def test_since_limits_every_block(store: Store, log: Log) -> None:
    log.row("old", send_at=NOW - 10 * DAY)
    log.event("old", "order", NOW - 9 * DAY, 25.0)
    log.row("new")
    log.row("h0", assignment="holdout", state="holdout")
    log.conn.commit()
    found = build(store, campaign(holdout=0.5), since=NOW - DAY)
    section = found.campaigns["spring"]
    itt = section.block("intent_to_treat")
    attributed = section.block("attribution")
    assert isinstance(itt, IntentToTreat) and isinstance(attributed, Attribution)
    assert itt.groups["treated"].assigned == 1 and itt.groups["treated"].converted == 0
    assert attributed.conversions == 0
    assert build(store, campaign(holdout=0.5)).holdouts["spring"].treated_converted == 1


def test_a_campaign_whose_file_is_gone_keeps_what_needs_no_settings(store: Store, log: Log) -> None:
    log.sent(log.row("e0"), "e0", "8")
    log.conn.commit()
    found = build(store)
    section = found.campaigns["spring"]
    assert [b.key for b in section.blocks] == ["intent_to_treat", "distribution"]
    strict_json(found)


# --- end to end ------------------------------------------------------------------------------


def test_the_report_reads_what_the_worker_planned_and_sent(
    store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid
) -> None:
    """A real tick (planner, outbox, dispatcher, message_sent events) at a fixed instant,
    so the global control group's period and every hash draw are the same on every run."""
    os.environ["SG_KEY"] = KEY
    shop = write_shop(tmp_path, store, fake_sendgrid, 400)
    file = shop.folder / "campaigns" / "blast.toml"
    text = re.sub(r"(?m)^at = .*$", f"at = {NOW.isoformat()}", file.read_text())
    file.write_text(
        text + 'goal = "order"\nattribution_window = "3d"\n'
        '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n'
    )
    for variant in ("a", "b"):
        folder = shop.folder / "templates" / "blast" / variant
        folder.mkdir()
        for part in ("email.subject.j2", "email.html.j2"):
            (folder / part).write_text((folder.parent / part).read_text())
    runner = Worker(load_settings(shop.config), store, clock=FixedClock(NOW), root=shop.folder)
    runner.tick()
    with store.connect() as conn:
        sent = (
            conn.execute(
                select(outbox.c.customer_id).where(outbox.c.state == "sent").order_by(outbox.c.id)
            )
            .scalars()
            .all()
        )
        assignments: dict[str, int] = dict(
            conn.execute(
                select(outbox.c.assignment, func.count()).group_by(outbox.c.assignment)
            ).all()
        )
    with store.begin() as conn:
        for customer in sent[:12]:
            conn.execute(
                insert(events).values(
                    customer_id=customer, type="order", ts=NOW + HOUR, value=25.0, properties={}
                )
            )
    found = build(store, runner.library.campaigns["blast"])
    section = found.campaigns["blast"]
    check, itt = section.block("sample_ratio"), section.block("intent_to_treat")
    assert isinstance(check, SampleRatioCheck) and isinstance(itt, IntentToTreat)
    assert check.found.observed == (assignments["treated"], assignments["holdout"])
    assert not check.found.mismatch, check.lines()
    assert {g: itt.groups[g].assigned for g in itt.groups} == assignments
    assert itt.groups["treated"].converted == 12
    # Nobody in the holdout bought: the Welch interval is too narrow, and the report says so.
    assert "every holdout row has the same revenue" in "\n".join(itt.lines())
    revenue = strict_json(found)["campaigns"]["blast"]["intent_to_treat"]["uplift"]["holdout"]
    assert revenue["revenue_per_customer"]["constant_group"] == "holdout"
    variants = section.block("variants")
    assert isinstance(variants, VariantRates)
    assert sum(arm.found.rows for arm in variants.arms) == assignments["treated"]
    assert sum(arm.found.converted for arm in variants.arms) == 12
    attributed = section.block("attribution")
    assert isinstance(attributed, Attribution) and attributed.conversions == 12
    spread = section.block("distribution")
    assert isinstance(spread, Distribution)
    assert spread.channels == {"email": assignments["treated"]}
    assert spread.local_hours == {f"{NOW.hour:02d}": len(sent)}
