"""The in-app inbox: what an app shows a logged-in customer, and what they did with it.

The ``inapp`` channel (``narrowcast.channels.inapp``) writes one
``inbox_messages`` row per message; an app lists them here and reports reads,
clicks and dismissals back. Every call carries the customer's token
(``Authorization: Bearer <token>``, see ``narrowcast.api.identity``), and a
message of another customer answers 404 exactly like one that does not exist,
so ids cannot be probed.

Marking is idempotent: the first instant wins, and the engagement event has a
natural id (``inapp:<id>:read``), so an app that retries on a flaky network
records one read, not three.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection, or_, select, update

from narrowcast.api.context import ApiContext, context, require_customer
from narrowcast.api.engagement import Response as Engagement
from narrowcast.api.engagement import record
from narrowcast.store.schema import inbox_messages

MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""A message id: a positive 64-bit integer (larger ones are a 422, not a database error)."""

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])

CHANNEL = "in_app"

# The action in the URL → the column it fills and the engagement kind it records.
# A click also counts as a read: nobody clicks a message they have not read.
_ACTIONS = {
    "read": ("read_at", "read"),
    "click": ("clicked_at", "clicked"),
    "dismiss": ("dismissed_at", "dismissed"),
}


class InboxMessage(BaseModel):
    id: int
    campaign: str
    title: str
    body: str
    cta_label: str | None = None
    cta_url: str | None = None
    image: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    read: bool


class Inbox(BaseModel):
    messages: list[InboxMessage]


Customer = Annotated[str, Depends(require_customer)]


@router.get("", response_model=Inbox)
def list_messages(
    request: Request,
    customer: Customer,
    include_read: Annotated[
        bool, Query(description="also list messages already read (dismissed ones never)")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=200, description="most messages returned")] = 50,
) -> Inbox:
    """The caller's undismissed, unexpired messages, newest first."""
    ctx = context(request)
    m = inbox_messages.c
    query = (
        select(inbox_messages)
        .where(
            m.customer_id == customer,
            m.dismissed_at.is_(None),
            or_(m.expires_at.is_(None), m.expires_at > ctx.clock()),
        )
        .order_by(m.created_at.desc(), m.id.desc())
        .limit(limit)
    )
    if not include_read:
        query = query.where(m.read_at.is_(None))
    with ctx.store.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return Inbox(messages=[_message(row) for row in rows])


@router.post("/{message_id}/read", status_code=204)
def read(message_id: MessageId, request: Request, customer: Customer) -> Response:
    """Mark the message read (the first read counts)."""
    return _mark(context(request), customer, message_id, "read")


@router.post("/{message_id}/click", status_code=204)
def click(message_id: MessageId, request: Request, customer: Customer) -> Response:
    """Record a click on the message's call to action (it also counts as read)."""
    return _mark(context(request), customer, message_id, "click")


@router.post("/{message_id}/dismiss", status_code=204)
def dismiss(message_id: MessageId, request: Request, customer: Customer) -> Response:
    """Dismiss the message: it is never listed again."""
    return _mark(context(request), customer, message_id, "dismiss")


def _mark(ctx: ApiContext, customer: str, message_id: int, action: str) -> Response:
    column, kind = _ACTIONS[action]
    now = ctx.clock()
    with ctx.store.begin() as conn:
        row = (
            conn.execute(
                select(inbox_messages).where(
                    inbox_messages.c.id == message_id, inbox_messages.c.customer_id == customer
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise HTTPException(404, f"you have no inbox message {message_id}")
        _fill(conn, message_id, column, now)
        if action == "click":
            _fill(conn, message_id, "read_at", now)
        record(
            conn,
            [
                Engagement(
                    customer_id=customer,
                    kind=kind,
                    ts=now,
                    outbox_id=row["outbox_id"],
                    campaign=row["campaign"],
                    variant=row["variant"],
                    channel=CHANNEL,
                    event_id=f"inapp:{message_id}:{kind}",
                    extra={"inbox_message_id": message_id},
                )
            ],
        )
    return Response(status_code=204)


def _fill(conn: Connection, message_id: int, column: str, now: datetime) -> None:
    """Set ``column`` to ``now`` unless an earlier instant is already there."""
    conn.execute(
        update(inbox_messages)
        .where(inbox_messages.c.id == message_id, inbox_messages.c[column].is_(None))
        .values({column: now})
    )


def _message(row: Any) -> InboxMessage:
    parts = row["parts"] or {}
    return InboxMessage(
        id=row["id"],
        campaign=row["campaign"],
        title=parts.get("title", ""),
        body=parts.get("body", ""),
        cta_label=parts.get("cta_label"),
        cta_url=parts.get("cta_url"),
        image=parts.get("image"),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        read=row["read_at"] is not None,
    )
