"""SendGrid Event Webhook events → engagement events, suppressions and consent.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event

Each event is matched to the outbox row it is about:

1. by ``outbox_id``: the SendGrid adapter sends it in each personalization's
   ``custom_args``, and SendGrid echoes custom args as top-level keys of every
   event (a string there, as custom args are strings);
2. failing that, by the ``sg_message_id`` prefix — the ``X-Message-Id`` the
   adapter stored as ``outbox.provider_id``; SendGrid appends
   ``.filter…``/``.recvd…`` parts — together with the event's email, since one
   Mail Send request (and so one message id) carries many recipients.

A matched event becomes a ``message_*`` event (``engagement.KINDS``) with
``event_id = "sendgrid:" + sg_event_id``, so a retried or replayed delivery of
the same event records nothing new. Opens that SendGrid marks
``sg_machine_open`` (Apple Mail Privacy Protection and other proxies fetching
the pixel) are ``machine_opened``, which no report counts as an open.

Whether or not it matches, the address is suppressed at once for a hard bounce
(``bounce`` with ``type`` ``bounce``; ``blocked`` is a temporary refusal), a
spam report, an unsubscribe or a group unsubscribe — SendGrid knows the
address even when we cannot find the message. An (group) unsubscribe also
withdraws the matched customer's email marketing consent. Side effects run
only for events not seen before.

Any matched event (``processed`` included) also proves that SendGrid accepted
the message: an outbox row left ``unknown`` by a worker that died while the
request was in flight becomes ``sent``, with its ``message_sent`` event — so
the crash guarantee's "received at most once" turns into "sent" as soon as
SendGrid reports on the message.

Events that cannot be matched are counted and logged, never an error:
SendGrid would retry the whole batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from narrowcast.api.engagement import Response, record
from narrowcast.api.preferences import set_marketing
from narrowcast.store.bulk import insert_ignoring_conflicts
from narrowcast.store.schema import customers, events, outbox, suppressions

log = logging.getLogger("narrowcast.api.webhooks")

KINDS = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "deferred": "deferred",
    "spamreport": "spam_reported",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
"""SendGrid ``event`` → engagement kind. Others (processed, group_resubscribe) are ignored."""

SOURCE = "sendgrid event webhook"
_EXTRA = ("url", "reason", "status", "type", "bounce_classification", "asm_group_id", "ip")
_EVENT_ID_MAX = 128


@dataclass
class Outcome:
    """What one webhook request did, for the response body and the log."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    uncorrelated: int = 0
    ignored: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    reconciled: int = 0
    """Outbox rows that were ``unknown`` and are now known to be ``sent``."""
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Target:
    outbox_id: int
    customer_id: str
    campaign: str
    variant: str | None
    channel: str | None
    email: str | None


def apply(conn: Connection, payload: Sequence[Mapping[str, Any]], now: datetime) -> Outcome:
    """Record a verified webhook's events in the caller's transaction."""
    outcome = Outcome(received=len(payload))
    # One correlation for the whole payload: reconciling needs every event's row
    # (``processed`` included), recording only the new ones of the kinds kept.
    target_of = _correlate(conn, payload)
    outcome.reconciled = _reconcile(conn, [t for t in target_of if t is not None], now)
    wanted = [
        (e, t) for e, t in zip(payload, target_of, strict=True) if str(e.get("event")) in KINDS
    ]
    outcome.ignored = len(payload) - len(wanted)
    ids = [_event_id(e) for e, _ in wanted]
    seen = _existing(conn, ids)
    fresh: list[tuple[str, Mapping[str, Any]]] = []
    targets: list[_Target | None] = []
    for event_id, (event, target) in zip(ids, wanted, strict=True):
        if event_id in seen:
            outcome.duplicates += 1
            continue
        seen.add(event_id)
        fresh.append((event_id, event))
        targets.append(target)

    responses: list[Response] = []
    suppress: dict[str, str] = {}
    withdraw: dict[str, str | None] = {}
    for (event_id, event), target in zip(fresh, targets, strict=True):
        name = str(event["event"])
        kind = _kind(event)
        email = _email(event)
        reason = _suppression(event)
        if reason is not None and email:
            suppress.setdefault(email, reason)
        if target is None:
            outcome.uncorrelated += 1
            log.info(
                "sendgrid %s event %s matches no outbox row (outbox_id %r, sg_message_id %r)",
                name,
                event_id,
                event.get("outbox_id"),
                event.get("sg_message_id"),
            )
            continue
        if name in ("unsubscribe", "group_unsubscribe"):
            withdraw[target.customer_id] = target.email
        outcome.kinds[kind] = outcome.kinds.get(kind, 0) + 1
        responses.append(
            Response(
                target.customer_id,
                kind,
                _ts(event, now),
                outbox_id=target.outbox_id,
                campaign=target.campaign,
                variant=target.variant,
                channel=target.channel,
                event_id=event_id,
                extra={"provider": "sendgrid", **{k: event[k] for k in _EXTRA if k in event}},
            )
        )
    # Events already stored were set aside above, so these are new (a concurrent
    # retry of the same batch is skipped by the unique event_id). record()'s own
    # count is not used: PostgreSQL reports no rowcount for a multi-row insert.
    record(conn, responses)
    outcome.recorded = len(responses)
    if suppress:
        insert_ignoring_conflicts(
            conn,
            suppressions,
            [
                {
                    "channel": "email",
                    "address": address,
                    "reason": reason,
                    "source": SOURCE,
                    "created_at": now,
                }
                for address, reason in sorted(suppress.items())
            ],
            ["channel", "address"],
        )
        outcome.suppressed = len(suppress)
    for customer_id, email in sorted(withdraw.items()):
        source = f"{SOURCE} (unsubscribe)"
        set_marketing(conn, customer_id, {"email": False}, source=source, now=now, email=email)
    outcome.unsubscribed = len(withdraw)
    return outcome


def _kind(event: Mapping[str, Any]) -> str:
    name = str(event["event"])
    if name == "open" and event.get("sg_machine_open") in (True, "true", 1):
        return "machine_opened"
    return KINDS[name]


def _suppression(event: Mapping[str, Any]) -> str | None:
    """The suppression reason an event calls for, if any."""
    name = event.get("event")
    if name == "bounce":
        # "blocked" is the receiver refusing for now (reputation, content); only a
        # "bounce" says the address does not exist.
        return "hard_bounce" if event.get("type") == "bounce" else None
    if name == "spamreport":
        return "spam_complaint"
    if name in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribed"
    return None


def _email(event: Mapping[str, Any]) -> str | None:
    email = event.get("email")
    return email.strip().lower() if isinstance(email, str) and "@" in email else None


def _ts(event: Mapping[str, Any], now: datetime) -> datetime:
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            return datetime.fromtimestamp(stamp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return now


def _event_id(event: Mapping[str, Any]) -> str:
    """``sendgrid:<sg_event_id>``; without one, a digest of what identifies the event."""
    sg_event_id = event.get("sg_event_id")
    if isinstance(sg_event_id, str) and sg_event_id:
        event_id = "sendgrid:" + sg_event_id
        if len(event_id) <= _EVENT_ID_MAX:
            return event_id
        return "sendgrid:sha256:" + hashlib.sha256(sg_event_id.encode()).hexdigest()
    parts = [str(event.get(k)) for k in ("sg_message_id", "event", "timestamp", "email", "url")]
    return "sendgrid:sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _existing(conn: Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    unique = sorted(set(ids))
    for start in range(0, len(unique), 1000):
        chunk = unique[start : start + 1000]
        found.update(conn.scalars(select(events.c.event_id).where(events.c.event_id.in_(chunk))))
    return found


def _outbox_id(event: Mapping[str, Any]) -> int | None:
    value = event.get("outbox_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _message_id(event: Mapping[str, Any]) -> str | None:
    value = event.get("sg_message_id")
    if not isinstance(value, str) or not value:
        return None
    return value.split(".", 1)[0]


def _correlate(conn: Connection, batch: Sequence[Mapping[str, Any]]) -> list[_Target | None]:
    """The outbox row of each event (same order), or None."""
    o, c = outbox.c, customers.c
    columns = (o.id, o.customer_id, o.campaign, o.variant, o.channel, c.email)
    joined = outbox.join(customers, customers.c.id == o.customer_id)

    by_id: dict[int, _Target] = {}
    ids = sorted({i for i in map(_outbox_id, batch) if i is not None})
    for start in range(0, len(ids), 1000):
        rows = conn.execute(
            select(*columns).select_from(joined).where(o.id.in_(ids[start : start + 1000]))
        )
        for row in rows:
            by_id[row.id] = _Target(*row)

    targets: list[_Target | None] = [by_id.get(_outbox_id(e) or -1) for e in batch]
    missing = [
        (index, message_id, email)
        for index, event in enumerate(batch)
        if targets[index] is None
        and (message_id := _message_id(event)) is not None
        and (email := _email(event)) is not None
    ]
    if missing:
        message_ids = sorted({m for _, m, _ in missing})
        emails = sorted({e for _, _, e in missing})
        by_message: dict[tuple[str, str], _Target] = {}
        rows = conn.execute(
            select(*columns, o.provider_id)
            .select_from(joined)
            .where(o.provider_id.in_(message_ids), func.lower(c.email).in_(emails))
            .order_by(o.id)
        )
        for row in rows:  # the newest row wins when one id and address were sent twice
            target = _Target(*row[:6])
            by_message[(row.provider_id, (row.email or "").lower())] = target
        for index, message_id, email in missing:
            targets[index] = by_message.get((message_id, email))
    return targets


def _reconcile(conn: Connection, targets: Sequence[_Target], now: datetime) -> int:
    """Mark ``unknown`` rows that SendGrid reports on as ``sent``; how many changed."""
    if not targets:
        return 0
    ids = sorted({t.outbox_id for t in targets})
    changed = conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids), outbox.c.state == "unknown")
        .values(state="sent", provider="sendgrid", updated_at=now)
        .returning(outbox.c.id)
    ).scalars()
    sent = set(changed)
    if sent:
        rows = {t.outbox_id: t for t in targets if t.outbox_id in sent}
        insert_ignoring_conflicts(
            conn,
            events,
            [
                {
                    "event_id": f"sent:{row.outbox_id}",  # the worker's own id: never two
                    "customer_id": row.customer_id,
                    "type": "message_sent",
                    "ts": now,
                    "value": None,
                    "properties": {
                        "outbox_id": row.outbox_id,
                        "campaign": row.campaign,
                        "variant": row.variant,
                        "channel": row.channel,
                        "provider": "sendgrid",
                        "reconciled": True,
                    },
                }
                for row in rows.values()
            ],
            ["event_id"],
        )
        log.info("sendgrid reported on %d messages left unknown by a crash: now sent", len(sent))
    return len(sent)
