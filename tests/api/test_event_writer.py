"""The API's event writer: what one batch statement stores, on both databases.

``test_ingest.py`` covers the endpoint's rules; these check the edges of the
writer itself — which of a batch's repeated event ids is stored, every
unknown customer named even on a repeated event, values that must come back
exactly as sent (text, numbers, instants), and a batch far larger than the
bench's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from narrowcast.store.schema import events
from tests.api.conftest import Api
from tests.api.test_ingest import add_customers, event, post_events, snapshot, stored_events


def test_the_first_of_a_repeated_event_id_is_the_one_stored(client: TestClient, api: Api) -> None:
    add_customers(client, "c1", "c2")
    response = post_events(
        client,
        [
            event("c1", event_id="e-1", value=1),
            event("c2", event_id="e-2", value=2),
            event("c2", event_id="e-1", value=3),
            event("c1", value=4),
            event("c1", value=5),
        ],
    )
    assert response.json() == {"accepted": 4, "duplicates": 1}
    rows = [(r["event_id"], r["customer_id"], r["value"]) for r in stored_events(api.store)]
    # Events without an id are never duplicates of each other.
    assert sorted(rows, key=lambda r: r[2]) == [
        ("e-1", "c1", 1.0),
        ("e-2", "c2", 2.0),
        (None, "c1", 4.0),
        (None, "c1", 5.0),
    ]


def test_every_unknown_customer_is_named_even_on_a_repeated_event(
    client: TestClient, api: Api
) -> None:
    add_customers(client, "c1")
    before = snapshot(api.store)
    response = post_events(
        client,
        [
            event("c1", event_id="e-1"),
            event("ghost", event_id="e-1"),
            event("c1"),
            event("nobody"),
            event("ghost"),
        ],
    )
    assert response.status_code == 422
    assert [(d["index"], d["message"].split("'")[1]) for d in response.json()["detail"]] == [
        (1, "ghost"),
        (3, "nobody"),
        (4, "ghost"),
    ]
    assert snapshot(api.store) == before


def test_values_come_back_exactly_as_sent(client: TestClient, api: Api) -> None:
    customer = 'ü ☃ 🎉 "quoted" \\ back'
    add_customers(client, customer)
    properties: dict[str, Any] = {
        "note": 'line\nbreak \u2028 tab\t "q" \\ 🎉',
        "nested": {"list": [1, None, {"deep": True}], "tiny": 1e-07},
        "big": 2**53,
    }
    items = [
        event(
            customer, event_id="é-1", ts="2025-03-01T18:30:00.123456-07:30", properties=properties
        ),
        event(customer, event_id="é-2", ts="0001-01-01T00:00:00+00:00", value=5e-324),
        event(customer, event_id="é-3", value=1.7976931348623157e308),
    ]
    assert post_events(client, items).json() == {"accepted": 3, "duplicates": 0}
    with api.store.connect() as conn:
        rows = conn.execute(
            select(events.c.customer_id, events.c.ts, events.c.value, events.c.properties).order_by(
                events.c.event_id
            )
        ).all()
    assert [row.customer_id for row in rows] == [customer] * 3
    assert [row.ts.astimezone(UTC) for row in rows] == [
        datetime(2025, 3, 2, 2, 0, 0, 123456, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2025, 3, 1, 17, 30, tzinfo=UTC),
    ]
    assert [row.value for row in rows] == [12.5, 5e-324, 1.7976931348623157e308]
    assert rows[0].properties == {**properties, "value": 12.5}


def test_a_batch_of_a_thousand_is_one_request(client: TestClient, api: Api) -> None:
    add_customers(client, *(f"c{n}" for n in range(50)))
    items = [event(f"c{n % 50}", event_id=f"e-{n}", page=f"/p/{n}") for n in range(1000)]
    assert post_events(client, items).json() == {"accepted": 1000, "duplicates": 0}
    assert post_events(client, items[990:] + [event("c1", event_id="e-new")]).json() == {
        "accepted": 1,
        "duplicates": 10,
    }
    assert len(stored_events(api.store)) == 1001
