"""The demo's simulated day: the worker sends, and the customers answer as they behave."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from narrowcast.config import load_settings
from narrowcast.demo import generate_demo
from narrowcast.demo.pipeline import run_pipeline
from narrowcast.demo.responses import respond
from narrowcast.segments.sql import json_property
from narrowcast.store import Store
from narrowcast.store.schema import events, outbox

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def test_the_demo_day_sends_and_its_customers_answer(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "demo.db"}"\n'
        f'[campaigns]\ndir = "{REPO / "campaigns"}"\ntemplates = "{REPO / "templates"}"\n'
        f'[channels.providers.file]\ndirectory = "{tmp_path / "outbox"}"\n'
    )
    settings = load_settings(tmp_path / "config.toml", env={"NARROWCAST_LINK_SECRET": "x" * 40})
    store = Store(settings.database.url)
    try:
        store.upgrade()
        generate_demo(store, customers=600, seed=3, now=NOW)
        report = run_pipeline(settings, store, NOW, seed=3)
        assert report.responses is not None and report.responses.clicks > 0
        assert "simulated responses" in report.summary()
        outbox_id = json_property(events, "outbox_id", "number")
        with store.connect() as conn:
            clicked = conn.execute(
                select(outbox.c.state, events.c.customer_id == outbox.c.customer_id)
                .join(outbox, outbox.c.id == outbox_id)
                .where(events.c.type == "message_clicked")
            ).all()
            orders = conn.scalar(
                select(func.count()).where(
                    events.c.type == "order", events.c.event_id.like("demo-order:%")
                )
            )
        # Every click answers a message that was sent, to the customer who clicked.
        assert len(clicked) == report.responses.clicks
        assert Counter(state for state, _ in clicked) == {"sent": len(clicked)}
        assert all(same for _, same in clicked)
        assert orders == report.responses.orders
        # Drawing again records nothing twice.
        again = respond(store, NOW, seed=3)
        assert (again.clicks, again.orders) == (0, 0)
    finally:
        store.dispose()
