"""The report's queries on both databases: a small shop that ran for a week, on SQLite and
PostgreSQL, and every panel's table held to counts made here in Python from the raw rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import select

from narrowcast.reporting import build_sections
from narrowcast.reporting.data import channel_engagement, segment_flow, variant_allocation
from narrowcast.store import Store
from narrowcast.store.schema import events, outbox

from .shop import build_shop, campaigns


def test_every_panel_on_both_databases(store: Store, tmp_path: Path) -> None:
    build_shop(store, tmp_path, customers=120, seed=5)
    with store.connect() as conn:
        sections = build_sections(conn, campaigns())
        sent = Counter(
            p["channel"]
            for (p,) in conn.execute(
                select(events.c.properties).where(events.c.type == "message_sent")
            )
        )
        rows = Counter(
            (c, v or "(single)")
            for c, v, state, assignment in conn.execute(
                select(outbox.c.campaign, outbox.c.variant, outbox.c.state, outbox.c.assignment)
            )
            if state != "holdout" and assignment not in ("holdout", "control")
        )
        found_flow = segment_flow(conn)
        allocation = variant_allocation(conn)
        engagement = channel_engagement(conn)
    panels = {p.key: p for s in sections for p in s.panels}
    assert sent and {c.channel: c.sent for c in engagement} == dict(sent)
    assert panels["channel-mix"].svg is not None
    assert {r[0]: int(r[1]) for r in panels["channel-mix"].table.rows} == dict(sent)
    assert found_flow is not None and found_flow.moved
    assert panels["segment-sizes"].svg and panels["segment-flow"].svg
    for found in allocation:
        for arm, counts in found.arms.items():
            if arm not in ("holdout", "control"):
                assert sum(counts) == rows[(found.campaign, arm)]
    assert any(key.startswith("send-time-") and p.svg for key, p in panels.items())
