"""A NUL character (JSON "\\u0000") anywhere in an item is a 422 naming it, not a 500.

PostgreSQL cannot store NUL in text or JSON, so such an item would fail deep in the
insert; it is refused up front, on SQLite too, with the other items untouched.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import SERVER_HEADERS, Api
from tests.api.test_ingest import add_customers, event, post_events, snapshot


def test_a_nul_in_an_event_is_refused_with_where_it_is(client: TestClient, api: Api) -> None:
    add_customers(client, "c1")
    before = snapshot(api.store)
    response = post_events(
        client,
        [
            event(),
            event(event_id="e\x00"),
            event(product={"name": "a\x00b", "tags": ["ok", "\x00"]}),
        ],
    )
    assert response.status_code == 422, response.text
    found = [(e["index"], e["field"]) for e in response.json()["detail"]]
    assert found == [(1, "event_id"), (2, "product.name"), (2, "product.tags[1]")]
    assert "NUL character" in response.json()["detail"][0]["message"]
    assert snapshot(api.store) == before


def test_a_nul_in_a_customer_key_is_refused(client: TestClient, api: Api) -> None:
    before = snapshot(api.store)
    response = client.post(
        "/v1/customers",
        json={"customers": [{"id": "c\x00"}, {"id": "c2", "bad\x00key": 1}]},
        headers=SERVER_HEADERS,
    )
    assert response.status_code == 422, response.text
    assert [(e["index"], e["field"]) for e in response.json()["detail"]] == [
        (0, "id"),
        (1, "bad\x00key"),
    ]
    assert snapshot(api.store) == before
