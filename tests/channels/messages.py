"""Rendered messages for the channel tests, one factory per channel kind."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from narrowcast.channels import Message

T = TypeVar("T")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop (no pytest-asyncio needed)."""
    return asyncio.run(coroutine)


def email(outbox_id: int = 1, to: str = "ana@example.com", **parts: Any) -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="email",
        customer_id=f"c{outbox_id}",
        to=to,
        parts={
            "subject": f"Spring sale for you, #{outbox_id}",
            "preheader": "Up to 40% off until Sunday",
            "html": f"<html><body><h1>Hello {outbox_id}</h1><p>Ofertas ñ €</p></body></html>",
            "text": f"Hello {outbox_id}\nOfertas ñ €",
            **parts,
        },
        campaign="spring-sale",
        variant="b",
        locale="es-ES",
        unsubscribe_url=f"https://shop.example/u/tok{outbox_id}",
        metadata={"run": "r1"},
    )


def push(outbox_id: int = 1, token: str | None = None, **parts: Any) -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="push",
        customer_id=f"c{outbox_id}",
        to=token or f"tok-{outbox_id:04d}-" + "a" * 140,
        parts={
            "title": "Your cart misses you",
            "body": f"Come back, {outbox_id}",
            "link": "https://shop.example/cart",
            "data": {"screen": "cart"},
            **parts,
        },
        campaign="cart-abandon",
        variant=None,
    )


def in_app(outbox_id: int = 1, customer_id: str = "c1", **parts: Any) -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="in_app",
        customer_id=customer_id,
        to=customer_id,
        parts={"title": "New arrivals", "body": "Have a look", "cta_label": "See", **parts},
        campaign="arrivals",
        variant="a",
        expires_at=NOW + timedelta(days=7),
    )


def web(outbox_id: int = 1, customer_id: str = "c1", **parts: Any) -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="web",
        customer_id=customer_id,
        to=customer_id,
        parts={
            "title": "Welcome!",
            "body": "First time here? Start with our guide.",
            "cta_label": "Read the guide",
            "cta_url": "https://shop.example/guide",
            "placement": "banner",
            "survey": None,
            "targeting": {"visitor": "new", "referrer": ["search"], "path": "/products/*"},
            **parts,
        },
        campaign="welcome-guide",
        expires_at=NOW + timedelta(days=3),
    )


def webhook(outbox_id: int = 1, **body: Any) -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="webhook",
        customer_id=f"c{outbox_id}",
        to="",
        parts={"body": {"event": "vip_entered", "customer": f"c{outbox_id}", **body}},
        campaign="vip-crm-sync",
    )
