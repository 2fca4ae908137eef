"""Engagement events: what people did with a message, written to ``events``.

Every response that comes back — through the inbox, a web message, a tracked
link, the unsubscribe page or a provider webhook — becomes one ``events`` row
of a ``message_*`` type with the message's ``outbox_id``, ``campaign``,
``variant`` and ``channel`` in its properties: the same vocabulary the
``message_sent`` rows use, so reports and the planner read them in one query.

``event_id`` makes a response idempotent where it has a natural identity (a
provider's event id, "the first read of inbox message 7"); a repeat is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from narrowcast.store.bulk import dialect_insert
from narrowcast.store.schema import events

KINDS = {
    "delivered": "message_delivered",
    "opened": "message_opened",
    "machine_opened": "message_machine_opened",
    "clicked": "message_clicked",
    "read": "message_read",
    "seen": "message_seen",
    "dismissed": "message_dismissed",
    "bounced": "message_bounced",
    "dropped": "message_dropped",
    "deferred": "message_deferred",
    "spam_reported": "message_spam_reported",
    "unsubscribed": "message_unsubscribed",
    "answered": "nps_response",
}
"""Response kind → event type. Machine opens (Apple Mail privacy protection and
the like) get their own type so that nothing counts them as engagement. A survey answer
is the ``nps_response`` event the NPS scores read."""


@dataclass(frozen=True, slots=True)
class Response:
    """One response to one message."""

    customer_id: str
    kind: str
    ts: datetime
    outbox_id: int | None = None
    campaign: str | None = None
    variant: str | None = None
    channel: str | None = None
    event_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "outbox_id": self.outbox_id,
            "campaign": self.campaign,
            "variant": self.variant,
            "channel": self.channel,
            **self.extra,
        }
        return {
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "type": KINDS[self.kind],
            "ts": self.ts,
            "value": None,
            "properties": {k: v for k, v in properties.items() if v is not None},
        }


def record(conn: Connection, responses: Sequence[Response]) -> int:
    """Insert the responses in the caller's transaction, skipping repeats of an ``event_id``.

    Returns how many rows were new.
    """
    if not responses:
        return 0
    # RETURNING yields only the rows inserted (psycopg reports no rowcount for a multi-row
    # insert), so a repeat of an event_id is not counted.
    inserted = conn.execute(
        dialect_insert(conn, events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(events.c.id),
        [response.row() for response in responses],
    )
    return len(inserted.all())
