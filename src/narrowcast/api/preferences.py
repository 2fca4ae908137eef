"""A customer's marketing preferences: what the consent rows say, and changing them.

Reading follows the send-time gate (``dispatch/gate.py``) so that the page
shows what will really happen: marketing email and push need consent granted,
the other channels are allowed unless refused. Changing writes ``consents``
rows (purpose ``marketing``) with the source of the change; transactional
consent is never touched here — service messages are not optional.

A customer who ticks email again on the preference centre has asked for it
themselves, so an ``unsubscribed`` suppression of their address (from an
earlier unsubscribe at the provider) is lifted; bounces and complaints stay.

Everything runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select

from narrowcast.store.bulk import upsert
from narrowcast.store.schema import CHANNELS, consents, customers, suppressions

OPT_IN_CHANNELS = ("email", "push")
"""Channels whose marketing needs consent granted; the others need only no refusal."""


@dataclass(frozen=True, slots=True)
class Person:
    """What the pages show about a customer (every field is theirs: escape it)."""

    id: str
    first_name: str | None
    email: str | None
    phone: str | None
    locale: str | None

    def channels(self) -> tuple[str, ...]:
        """The channels the preference centre offers: SMS only to those with a phone."""
        return tuple(ch for ch in CHANNELS if ch != "sms" or self.phone)


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did: channels whose marketing stopped, and those that started."""

    withdrawn: tuple[str, ...] = ()
    granted: tuple[str, ...] = ()


def find_person(conn: Connection, customer_id: str) -> Person | None:
    c = customers.c
    row = conn.execute(
        select(c.id, c.first_name, c.email, c.phone, c.locale).where(c.id == customer_id)
    ).first()
    return None if row is None else Person(*row)


def stored_marketing(conn: Connection, customer_id: str) -> dict[str, bool]:
    """The ``marketing`` consent rows of a customer, by channel (absent: never said)."""
    k = consents.c
    rows = conn.execute(
        select(k.channel, k.granted).where(k.customer_id == customer_id, k.purpose == "marketing")
    )
    return {channel: bool(granted) for channel, granted in rows}


def allowed(channel: str, stored: bool | None) -> bool:
    """Whether marketing on ``channel`` may be sent, given the stored consent (the gate's rule)."""
    return stored is True if channel in OPT_IN_CHANNELS else stored is not False


def current(conn: Connection, person: Person) -> dict[str, bool]:
    """Whether marketing may reach ``person`` on each channel the preference centre offers."""
    return _before(conn, person.id, person.email, person.channels())


def _before(
    conn: Connection, customer_id: str, email: str | None, channels: tuple[str, ...]
) -> dict[str, bool]:
    stored = stored_marketing(conn, customer_id)
    state = {ch: allowed(ch, stored.get(ch)) for ch in channels}
    if state.get("email") and email and _unsubscribed(conn, email):
        state["email"] = False
    return state


def _unsubscribed(conn: Connection, email: str) -> bool:
    s = suppressions.c
    found = conn.execute(
        select(s.address).where(
            s.channel == "email", s.address == email.lower(), s.reason == "unsubscribed"
        )
    ).first()
    return found is not None


def set_marketing(
    conn: Connection,
    customer_id: str,
    wanted: Mapping[str, bool],
    *,
    source: str,
    now: datetime,
    email: str | None = None,
) -> Change:
    """Make marketing consent on each channel of ``wanted`` what it says.

    Only rows that differ are written (``updated_at`` stays the moment the
    customer last changed their mind). ``email``: the customer's address, whose
    ``unsubscribed`` suppression is lifted when email is granted again.
    """
    unknown = sorted(set(wanted) - set(CHANNELS))
    if unknown:
        raise ValueError(f"not consent channels: {', '.join(unknown)}; have {', '.join(CHANNELS)}")
    stored = stored_marketing(conn, customer_id)
    before = _before(conn, customer_id, email, tuple(wanted))
    rows = [
        {
            "customer_id": customer_id,
            "channel": channel,
            "purpose": "marketing",
            "granted": want,
            "source": source,
            "updated_at": now,
        }
        for channel, want in wanted.items()
        if stored.get(channel) is not want
    ]
    upsert(conn, consents, rows, ["customer_id", "channel", "purpose"])
    withdrawn = tuple(ch for ch, want in wanted.items() if not want and before[ch])
    granted = tuple(ch for ch, want in wanted.items() if want and not before[ch])
    if wanted.get("email") and email:
        conn.execute(
            delete(suppressions).where(
                suppressions.c.channel == "email",
                suppressions.c.address == email.lower(),
                suppressions.c.reason == "unsubscribed",
            )
        )
    return Change(withdrawn, granted)
