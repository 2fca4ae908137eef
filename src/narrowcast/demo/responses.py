"""How the demo shop's customers answer the messages the pipeline sent them.

A real shop's responses come back through the HTTP API (tracked links, the
inbox, web messages, SendGrid's webhook). The demo has no people to click, so
each message sent draws a response from the customer's own demo behaviour:
more likely at the local hours they usually visit in (their sessions), and on
the channel their orders come through. A click is recorded the way the API
records one (``message_clicked`` with the message's ``outbox_id``), and some
clicks lead to an order — the goal of most demo campaigns — so that
``narrowcast report`` and its charts, and the learning, have results to read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from sqlalchemy import Connection, select

from narrowcast.api.engagement import Response, record
from narrowcast.segments.sql import json_property
from narrowcast.store import Store
from narrowcast.store.bulk import dialect_insert
from narrowcast.store.schema import customers, events, outbox
from narrowcast.timezones import Zones

BASE = 0.02
"""Click chance of a message at an hour the customer is never active in."""
ACTIVE = 0.30
"""Added in proportion to the share of their visits that start within an hour of it."""
OTHER_CHANNEL = 0.5
"""Factor for a channel their orders do not come through."""
ORDER_AFTER_CLICK = 0.25


@dataclass
class Responses:
    clicks: int = 0
    orders: int = 0

    def summary(self) -> str:
        return (
            f"simulated responses: {self.clicks:,} clicks and {self.orders:,} orders after them "
            "(each customer answers at the hours they visit, on the channel they buy through); "
            "`narrowcast report --html report.html` charts them"
        )


def respond(store: Store, since: datetime, seed: int) -> Responses:
    """Draw a response to every message sent since ``since``; write clicks and orders."""
    rng = Random(seed)
    local_hour = json_property(events, "local_hour", "text")
    outbox_id = json_property(events, "outbox_id", "number")
    with store.connect() as conn:
        sent = conn.execute(
            select(
                outbox.c.id,
                outbox.c.customer_id,
                outbox.c.campaign,
                outbox.c.variant,
                outbox.c.channel,
                events.c.ts,
                local_hour,
            )  # fmt: skip
            .join(outbox, outbox.c.id == outbox_id)
            .where(events.c.type == "message_sent", events.c.ts >= since)
            .order_by(outbox.c.id)
        ).all()
        people = sorted({row.customer_id for row in sent})
        habits = _habits(conn, people)
    found = Responses()
    clicks: list[Response] = []
    orders: list[dict[str, object]] = []
    for row_id, customer_id, campaign, variant, channel, ts, hour in sent:
        hours, channel_of_orders = habits.get(customer_id, (Counter(), None))
        near = sum(hours[(int(hour or 0) + d) % 24] for d in (-1, 0, 1))
        share = near / max(sum(hours.values()), 1)
        chance = BASE + ACTIVE * share
        if channel_of_orders is not None and channel != channel_of_orders:
            chance *= OTHER_CHANNEL
        if rng.random() >= chance:
            continue
        at = ts.astimezone(UTC) + timedelta(minutes=rng.randint(2, 180))
        clicks.append(
            Response(
                customer_id,
                "clicked",
                at,
                outbox_id=int(row_id),
                campaign=campaign,
                variant=variant,
                channel=channel,
                event_id=f"demo-click:{row_id}",
            )
        )
        if rng.random() < ORDER_AFTER_CLICK:
            orders.append(
                {
                    "event_id": f"demo-order:{row_id}",
                    "customer_id": customer_id,
                    "type": "order",
                    "ts": at + timedelta(minutes=rng.randint(5, 90)),
                    "value": round(rng.uniform(20, 180), 2),
                    "properties": {"channel": channel, "source": "demo response"},
                }
            )
    with store.begin() as conn:
        found.clicks = record(conn, clicks)
        if orders:
            statement = dialect_insert(conn, events).on_conflict_do_nothing(
                index_elements=["event_id"]
            )
            found.orders = len(conn.execute(statement.returning(events.c.id), orders).all())
    return found


def _habits(conn: Connection, people: list[str]) -> dict[str, tuple[Counter[int], str | None]]:
    """Per customer: their sessions by local start hour, and the channel most orders came by."""
    found: dict[str, tuple[Counter[int], str | None]] = {}
    zones = Zones()
    channel = json_property(events, "channel", "text")
    for start in range(0, len(people), 500):
        chunk = people[start : start + 500]
        rows = conn.execute(
            select(events.c.customer_id, events.c.type, events.c.ts, channel, customers.c.timezone)
            .join(customers, customers.c.id == events.c.customer_id)
            .where(events.c.customer_id.in_(chunk), events.c.type.in_(("session_start", "order")))
        )
        by_channel: dict[str, Counter[str]] = {}
        for customer_id, kind, ts, via, zone_name in rows:
            hours, _ = found.setdefault(customer_id, (Counter(), None))
            if kind == "session_start":
                hours[ts.astimezone(zones(zone_name)).hour] += 1
            elif via:
                by_channel.setdefault(customer_id, Counter())[via] += 1
        for customer_id, counts in by_channel.items():
            found[customer_id] = (found[customer_id][0], counts.most_common(1)[0][0])
    return found


__all__ = ["Responses", "respond"]
