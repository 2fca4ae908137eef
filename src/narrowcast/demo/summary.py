"""A short picture of what is in a store, printed after ``narrowcast demo``.

A handful of aggregate queries — the database counts, Python only formats —
so it takes seconds on a store of a million customers too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, func, select

from narrowcast.plaintable import format_table
from narrowcast.store import Store
from narrowcast.store.schema import consents, customers, device_tokens, events


def describe_store(store: Store, now: datetime) -> str:
    """Customers by country and type, events by type, consents by channel, tokens."""
    with store.connect() as conn:
        return "\n".join(_sections(conn, now))


def _sections(conn: Connection, now: datetime) -> list[str]:
    recent = now - timedelta(days=30)
    count = func.count().label("n")
    by_country = conn.execute(
        select(customers.c.country, count).group_by(customers.c.country).order_by(count.desc())
    ).all()
    by_type = conn.execute(
        select(customers.c.customer_type, count)
        .group_by(customers.c.customer_type)
        .order_by(count.desc())
    ).all()
    is_recent = func.sum(case((events.c.ts >= recent, 1), else_=0))
    by_event = conn.execute(
        select(events.c.type, count, is_recent).group_by(events.c.type).order_by(count.desc())
    ).all()
    granted = func.sum(case((consents.c.granted, 1), else_=0))
    by_channel = conn.execute(
        select(consents.c.channel, consents.c.purpose, granted, count - granted)
        .group_by(consents.c.channel, consents.c.purpose)
        .order_by(consents.c.channel, consents.c.purpose)
    ).all()
    tokens, live_tokens = conn.execute(
        select(count, func.sum(case((device_tokens.c.invalidated_at.is_(None), 1), else_=0)))
    ).one()

    total_customers = sum(int(n) for _, n in by_country)
    total_events = sum(int(n) for _, n, _ in by_event)
    total_recent = sum(int(r or 0) for _, _, r in by_event)
    return [
        f"{total_customers:,} customers, {total_events:,} events "
        f"({total_recent:,} in the 30 days before {now:%Y-%m-%d %H:%M %Z}), "
        f"{tokens:,} device tokens ({live_tokens or 0:,} valid)",
        "",
        format_table(
            ("country", "customers", "share"),
            [(c or "?", n, _share(n, total_customers)) for c, n in by_country],
        ),
        "",
        format_table(
            ("customer type", "customers", "share"),
            [(t, n, _share(n, total_customers)) for t, n in by_type],
        ),
        "",
        format_table(
            ("event type", "events", "last 30 days"), [(t, n, r or 0) for t, n, r in by_event]
        ),
        "",
        format_table(
            ("consent", "purpose", "granted", "refused"),
            [(c, p, g or 0, r or 0) for c, p, g, r in by_channel],
        ),
    ]


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
