"""The frequency caps at send time: marketing messages *sent* in the last day and week.

Each customer's history is written into the outbox, a new message is claimed
for each, and ``Gate.check`` must stop exactly those whose history reaches a
cap — counting only marketing messages that were sent, within the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from narrowcast.campaigns.model import Campaign
from narrowcast.dispatch.gate import Gate
from narrowcast.dispatch.outbox import CLAIMED_COLUMNS, Claimed
from narrowcast.planning.settings import FrequencySettings, PlanningSettings
from narrowcast.segments.definitions import load_definitions
from narrowcast.store import Store
from narrowcast.store.bulk import insert_columns
from narrowcast.store.schema import campaign_runs, consents, customers, outbox

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Per customer: (purpose, state, hours before NOW it was sent, or None) of each past message.
HISTORY: dict[str, list[tuple[str, str, float | None]]] = {
    "day": [("marketing", "sent", 2), ("marketing", "sent", 23)],
    "week": [("marketing", "sent", 30 + 24 * d) for d in range(5)],
    "below": [
        ("marketing", "sent", 3),
        ("transactional", "sent", 1),
        ("transactional", "sent", 2),
        ("marketing", "sent", 24 * 8),  # a week and a day ago
        ("marketing", "failed", None),
        ("marketing", "planned", None),
    ],
    "nothing": [],
}


def _write(store: Store) -> list[Claimed]:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {"id": c, "email": f"{c}@example.com", "created_at": NOW, "updated_at": NOW}
                | {"attributes": {}}
                for c in HISTORY
            ],
        )
        conn.execute(
            insert(consents),
            [
                {
                    "customer_id": c,
                    "channel": "email",
                    "purpose": "marketing",
                    "granted": True,
                    "source": "test",
                    "updated_at": NOW,
                }
                for c in HISTORY
            ],
        )
        run = conn.execute(
            insert(campaign_runs)
            .values(
                campaign="blast",
                key="k",
                kind="scheduled",
                occurrence=NOW,
                state="planned",
                created_at=NOW,
            )
            .returning(campaign_runs.c.id)
        ).scalar_one()
        rows = []
        for customer, past in HISTORY.items():
            for n, (purpose, state, hours) in enumerate([*past, ("marketing", "claimed", None)]):
                sent_at = None if hours is None else NOW - hours * HOUR
                rows.append(
                    {
                        "run_id": run,
                        "campaign": "blast",
                        "customer_id": customer,
                        "dedupe_key": f"{customer}:{n}",
                        "channel": "email",
                        "purpose": purpose,
                        "priority": 0,
                        "state": state,
                        "send_at": NOW - 10 * 24 * HOUR,
                        "expires_at": NOW + HOUR,
                        "attempts": 1 if state == "claimed" else 0,
                        "sent_at": sent_at,
                        "created_at": NOW - 10 * 24 * HOUR,
                        "updated_at": NOW,
                    }
                )
        insert_columns(conn, outbox, rows)
        claimed = conn.execute(select(*CLAIMED_COLUMNS).where(outbox.c.state == "claimed")).all()
    return [Claimed(*row) for row in claimed]


def _verdicts(store: Store, frequency: FrequencySettings) -> dict[str, str | None]:
    rows = _write(store)
    campaigns = {
        "blast": Campaign.model_validate(
            {"name": "blast", "where": "True", "channel": ["email"], "at": NOW.isoformat()}
        )
    }
    people = {c: {"id": c, "email": f"{c}@example.com"} for c in HISTORY}
    with store.connect() as conn:
        gate = Gate(
            conn,
            load_definitions(Path("/nonexistent/segments.toml")),
            PlanningSettings(frequency=frequency),
            campaigns,
            NOW,
        )
        verdicts = gate.check(rows, people)
    return {row.customer_id: verdicts[row.id].reason for row in rows}


def test_the_caps_count_marketing_messages_sent_within_the_day_and_the_week(store: Store) -> None:
    assert _verdicts(store, FrequencySettings(per_day=2, per_week=5)) == {
        "day": "frequency cap reached at send time (2 in a day)",
        "week": "frequency cap reached at send time (5 in a week)",
        "below": None,
        "nothing": None,
    }


def test_a_cap_left_out_stops_nothing(store: Store) -> None:
    assert _verdicts(store, FrequencySettings(per_day=None, per_week=None)) == dict.fromkeys(
        HISTORY
    )
