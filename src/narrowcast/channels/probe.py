"""``narrowcast channels test``: one real message to one customer, to check a provider's setup.

The message says it is a test, goes through the configured route exactly as
campaign messages do, and carries a negative outbox id — real outbox rows are
positive, so a test can never collide with one (in-app and web messages are
keyed by the outbox id).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select

from narrowcast.channels.base import Message, Result
from narrowcast.channels.errors import ChannelConfigError
from narrowcast.channels.routes import Routes
from narrowcast.store import Store
from narrowcast.store.schema import customers, device_tokens

TEXT = "This is a test message from narrowcast: the {kind} channel works."


def test_messages(store: Store, kind: str, customer_id: str, now: datetime) -> list[Message]:
    """The test message(s) for ``customer_id`` on channel ``kind`` (one per device for push)."""
    with store.connect() as conn:
        customer = conn.execute(
            select(customers.c.email, customers.c.phone).where(customers.c.id == customer_id)
        ).first()
        if customer is None:
            raise ChannelConfigError(f"customer {customer_id!r} is not in the store")
        tokens = list(
            conn.scalars(
                select(device_tokens.c.token).where(
                    device_tokens.c.customer_id == customer_id,
                    device_tokens.c.invalidated_at.is_(None),
                )
            )
        )
    text = TEXT.format(kind=kind)
    base = -int(now.timestamp() * 1000)

    def message(
        outbox_id: int, to: str, parts: Mapping[str, object], expires: datetime | None = None
    ) -> Message:
        return Message(
            outbox_id=outbox_id,
            channel=kind,
            customer_id=customer_id,
            to=to,
            parts=parts,
            campaign="narrowcast-test",
            expires_at=expires,
        )

    if kind == "email":
        if not customer.email:
            raise ChannelConfigError(f"customer {customer_id!r} has no email address")
        email = {"subject": "narrowcast test", "html": f"<p>{text}</p>", "text": text}
        return [message(base, customer.email, email)]
    if kind == "push":
        if not tokens:
            raise ChannelConfigError(f"customer {customer_id!r} has no valid device token")
        return [
            message(base - i, token, {"title": "narrowcast test", "body": text})
            for i, token in enumerate(tokens)
        ]
    if kind in ("in_app", "web"):
        parts: dict[str, object] = {"title": "narrowcast test", "body": text}
        if kind == "web":
            parts["placement"] = "toast"
            parts["targeting"] = {"visitor": "any", "path": "*"}
        return [message(base, customer_id, parts, now + timedelta(hours=1))]
    if kind == "webhook":
        body: dict[str, object] = {"test": True, "customer_id": customer_id, "text": text}
        return [message(base, "", {"body": body})]
    # A plugin's channel: the phone number if it has one (SMS and the like), else the id.
    to = customer.phone or customer_id
    return [message(base, to, {"body": text, "text": text})]


async def send_test(routes: Routes, kind: str, messages: list[Message]) -> list[Result]:
    async with routes:
        return await routes[kind].send(messages)
