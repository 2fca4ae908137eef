"""A demo shop that has lived for a week: sends, responses, snapshots — what reports draw.

``build_shop`` fills a real store with the demo generator, then runs the
repository's sample campaigns through the real worker (file adapter, in-app and
web tables) with a simulated clock, a tick every four hours for eight days from
a Monday, and a segment snapshot every day. After each tick the customers
"answer" the messages just sent, drawn from a seeded random generator: email
and push are delivered, some opened by people and some by machines, some
clicked, more often in the evening; some customers order (every sample
campaign's goal) within a day, the holdout group a little less often.

Used by the report tests and by the dashboard tests (``tests/api``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, select

from narrowcast.api.engagement import Response, record
from narrowcast.campaigns.loader import campaign_paths, load_campaigns
from narrowcast.campaigns.model import Campaign
from narrowcast.config import Settings, load_settings
from narrowcast.demo import generate_demo
from narrowcast.dispatch.clock import FixedClock
from narrowcast.segments.sql import json_property
from narrowcast.store import Store
from narrowcast.store.bulk import insert_ignoring_conflicts
from narrowcast.store.schema import events, outbox
from narrowcast.worker.worker import Worker

REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS = REPO / "campaigns"
TEMPLATES = REPO / "templates"
SECRET_ENV = "NARROWCAST_REPORTING_TEST_SECRET"
SECRET = "a link secret for the report tests, over thirty-two bytes"
START = datetime(2026, 3, 2, 6, tzinfo=UTC)  # a Monday
"""The demo's 'now'; the worker runs from here on."""
DAYS = 8
STEP = timedelta(hours=4)


@dataclass(frozen=True)
class Shop:
    folder: Path
    config: Path
    settings: Settings
    store: Store
    end: datetime


@contextmanager
def link_secret() -> Iterator[None]:
    """The link-signing secret in the environment, for as long as the block runs."""
    before = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = before


def campaigns() -> dict[str, Campaign]:
    """The repository's sample campaigns, as the worker loads them."""
    channels = ("email", "push", "in_app", "web", "webhook")
    loaded = load_campaigns(campaign_paths(CAMPAIGNS, set()), channels)
    return {name: f.campaign for name, f in loaded.files.items()}


def write_config(folder: Path, database_url: str) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[campaigns]\ndir = "{CAMPAIGNS}"\ntemplates = "{TEMPLATES}"\n'
        f'[links]\nsecret_env = "{SECRET_ENV}"\n'
        '[channels.providers.file]\ndirectory = "outbox"\n',
        encoding="utf-8",
    )
    return config


def build_shop(store: Store, folder: Path, *, customers: int = 300, seed: int = 11) -> Shop:
    """Fill ``store`` (upgraded, empty) with a shop that has run for ``DAYS`` days."""
    generate_demo(store, customers=customers, seed=seed, now=START)
    config = write_config(folder, store.engine.url.render_as_string(hide_password=False))
    settings = load_settings(config)
    audience = _Audience(random.Random(seed))
    clock = FixedClock(START - timedelta(days=7))
    with link_secret():
        worker = Worker(settings, store, clock=clock, root=folder)
        worker.snapshot()
        clock.at = START
        for step in range(int(timedelta(days=DAYS) / STEP)):
            if step % 6 == 0:
                worker.snapshot()
            worker.tick()
            with store.begin() as conn:
                audience.respond(conn, clock.at)
            clock.advance(STEP)
    return Shop(folder, config, settings, store, clock.at)


@dataclass
class _Audience:
    """The simulated customers: answer each message once, the holdout group orders too."""

    rng: random.Random
    last_sent: int = 0
    holdouts_seen: set[int] = field(default_factory=set)

    def respond(self, conn: Connection, now: datetime) -> None:
        s = events
        sent = conn.execute(
            select(
                s.c.id,
                s.c.customer_id,
                s.c.ts,
                json_property(s, "outbox_id", "number"),
                json_property(s, "campaign", "text"),
                json_property(s, "variant", "text"),
                json_property(s, "channel", "text"),
                json_property(s, "local_hour", "text"),
            )
            .where(s.c.type == "message_sent", s.c.id > self.last_sent)
            .order_by(s.c.id)
        ).all()
        responses: list[Response] = []
        orders: list[dict[str, object]] = []
        for row in sent:
            self.last_sent = row[0]
            customer, ts, box, channel, local = row[1], row[2], int(row[3]), row[6], row[7]
            answer = partial(
                _answer,
                customer,
                ts,
                outbox_id=box,
                campaign=row[4],
                variant=row[5],
                channel=channel,
            )
            if channel in ("email", "push") and self.rng.random() < 0.93:
                responses.append(answer("delivered", 1))
            if channel == "email" and self.rng.random() < 0.15:
                responses.append(answer("machine_opened", 2))
            if self.rng.random() < 0.35:
                responses.append(answer("opened", 20))
            evening = local is not None and 17 <= int(local) <= 21
            if self.rng.random() < (0.25 if evening else 0.08):
                responses.append(answer("clicked", 25))
            if self.rng.random() < 0.10:
                orders.append(_order(customer, ts + timedelta(hours=20), f"sim-order-{box}"))
        holdouts = conn.execute(
            select(outbox.c.id, outbox.c.customer_id, outbox.c.send_at).where(
                outbox.c.state == "holdout", outbox.c.send_at <= now
            )
        ).all()
        for box, customer, send_at in holdouts:
            if box in self.holdouts_seen:
                continue
            self.holdouts_seen.add(box)
            if self.rng.random() < 0.04:
                orders.append(_order(customer, send_at + timedelta(hours=20), f"sim-order-h{box}"))
        record(conn, responses)
        insert_ignoring_conflicts(conn, events, orders, ["event_id"])


def _answer(
    customer: str,
    sent_at: datetime,
    kind: str,
    minutes: int,
    *,
    outbox_id: int,
    campaign: str,
    variant: str | None,
    channel: str,
) -> Response:
    return Response(
        customer,
        kind,
        sent_at + timedelta(minutes=minutes),
        outbox_id=outbox_id,
        campaign=campaign,
        variant=variant,
        channel=channel,
    )


def _order(customer: str, ts: datetime, event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "type": "order",
        "ts": ts,
        "value": 42.0,
        "properties": {"value": 42.0, "currency": "EUR", "items": 1},
    }
