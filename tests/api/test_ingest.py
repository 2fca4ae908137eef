"""POST /v1/events, /v1/customers and /v1/push-tokens over the real app and a real store.

Every refusal is checked twice: the status and per-item message the client
sees, and that the store holds exactly what it held before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from narrowcast.api.app import create_app
from narrowcast.api.settings import ApiSecrets
from narrowcast.store import Store
from narrowcast.store.schema import consents, customers, device_tokens, event_properties, events
from tests.api.conftest import SERVER_HEADERS, Api, make_api

T0 = "2025-03-01T18:30:00+01:00"


def event(customer: str = "c1", **fields: Any) -> dict[str, Any]:
    return {"customer_id": customer, "type": "order", "ts": T0, "value": 12.5, **fields}


def post_events(client: TestClient, items: list[Any]) -> Any:
    return client.post("/v1/events", json={"events": items}, headers=SERVER_HEADERS)


def add_customers(client: TestClient, *ids: str) -> None:
    response = client.post(
        "/v1/customers", json={"customers": [{"id": i} for i in ids]}, headers=SERVER_HEADERS
    )
    assert response.status_code == 200, response.text


def count(store: Store, table: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def stored_events(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.id)).mappings().all()
    return [dict(row) for row in rows]


def snapshot(store: Store) -> tuple[int, ...]:
    return tuple(
        count(store, table)
        for table in (customers, events, consents, device_tokens, event_properties)
    )


# --- events --------------------------------------------------------------------------------


def test_events_are_stored_with_their_properties(client: TestClient, api: Api) -> None:
    add_customers(client, "c1", "c2")
    response = post_events(
        client,
        [
            event("c1", event_id="e-1", currency="eur", items=2),
            {
                "customer_id": "c2",
                "type": "page_view",
                "ts": "2025-03-02T08:00:00Z",
                "properties": {"page": "/shoes", "duration_s": 4},
            },
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "duplicates": 0}
    rows = stored_events(api.store)
    assert [(r["customer_id"], r["type"], r["event_id"]) for r in rows] == [
        ("c1", "order", "e-1"),
        ("c2", "page_view", None),
    ]
    order, view = rows
    assert order["ts"] == datetime(2025, 3, 1, 17, 30, tzinfo=UTC)
    assert order["value"] == 12.5
    assert order["properties"] == {"value": 12.5, "currency": "EUR", "items": 2}
    assert view["properties"] == {"page": "/shoes", "duration_s": 4.0}
    # The catalogue learns the properties, as on import.
    assert count(api.store, event_properties) == 5


def test_a_resent_batch_stores_nothing_new(client: TestClient, api: Api) -> None:
    add_customers(client, "c1")
    batch = [event(event_id="e-1"), event(event_id="e-2"), event(event_id="e-1")]
    assert post_events(client, batch).json() == {"accepted": 2, "duplicates": 1}
    assert post_events(client, batch).json() == {"accepted": 0, "duplicates": 3}
    assert [r["event_id"] for r in stored_events(api.store)] == ["e-1", "e-2"]


def test_html_in_properties_is_stored_verbatim_and_answered_as_json(
    client: TestClient, api: Api
) -> None:
    add_customers(client, "c1")
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = post_events(client, [event(note=script, properties={"html": f"<b>{script}</b>"})])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    [row] = stored_events(api.store)
    assert row["properties"]["note"] == script
    assert row["properties"]["html"] == f"<b>{script}</b>"


def test_an_unknown_customer_refuses_the_whole_batch(client: TestClient, api: Api) -> None:
    add_customers(client, "c1")
    before = snapshot(api.store)
    response = post_events(client, [event("c1"), event("nobody"), event("c1")])
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "index": 1,
                "field": "customer_id",
                "message": "no customer 'nobody' in the store — POST /v1/customers first",
            }
        ]
    }
    assert snapshot(api.store) == before


def test_a_refused_batch_does_not_hide_its_new_properties_from_later_ones(
    client: TestClient, api: Api
) -> None:
    """The catalogue of event properties is cached per process: a refused (rolled back)
    request must not leave it believing a property it never stored is catalogued."""
    add_customers(client, "c1")
    refused = post_events(client, [event("c1", coupon="SPRING"), event("nobody")])
    assert refused.status_code == 422
    assert post_events(client, [event("c1", coupon="SPRING")]).status_code == 200
    with api.store.connect() as conn:
        catalogued = set(
            conn.execute(
                select(event_properties.c.property).where(event_properties.c.type == "order")
            ).scalars()
        )
    assert "coupon" in catalogued


BAD_EVENTS = [
    pytest.param(event(ts="yesterday"), "ts", "not an ISO 8601 timestamp", id="bad-ts"),
    pytest.param(event(ts="2025-03-01T18:30:00"), "ts", "no UTC offset", id="naive-ts"),
    pytest.param(event(ts=1740850200), "ts", "expected an ISO 8601", id="ts-number"),
    pytest.param({"customer_id": "c1", "type": "order"}, "ts", "missing", id="missing-ts"),
    pytest.param({"type": "order", "ts": T0}, "customer_id", "missing", id="missing-customer"),
    pytest.param(event(customer_id=["c1"]), "customer_id", "expected text", id="customer-list"),
    pytest.param(event(type="Order Placed"), "type", "not a valid event type", id="bad-type"),
    pytest.param(event(value="lots"), "value", "expected a number", id="value-text"),
    pytest.param(event(value=-3), "value", "0 or more", id="value-negative"),
    pytest.param(event(currency="E1"), "currency", "ISO 4217", id="bad-currency"),
    pytest.param(
        {"customer_id": "c1", "type": "nps_response", "ts": T0}, "score", "missing", id="no-score"
    ),
    pytest.param(event(properties=[1, 2]), "properties", "JSON object", id="properties-list"),
    pytest.param(event(**{"bad name": 1}), "bad name", "not a usable name", id="bad-name"),
    pytest.param(event(event_id={"a": 1}), "event_id", "expected text", id="event-id-object"),
    pytest.param([1, 2], None, "expected a JSON object, got an array", id="item-array"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_EVENTS)
def test_a_bad_event_refuses_the_batch_and_names_the_field(
    client: TestClient, api: Api, bad: Any, field: str | None, message: str
) -> None:
    add_customers(client, "c1")
    before = snapshot(api.store)
    response = post_events(client, [event(), event(event_id="ok"), bad])
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["index"] == 2
    assert error["field"] == field
    assert message in error["message"]
    assert snapshot(api.store) == before


def test_every_bad_event_is_listed(client: TestClient, api: Api) -> None:
    add_customers(client, "c1")
    response = post_events(client, [event(ts="x"), event(), event(type=""), event("")])
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["detail"]] == [
        (0, "ts"),
        (2, "type"),
        (3, "customer_id"),
    ]
    assert count(api.store, events) == 0


BAD_BODIES = [
    pytest.param(b'{"events": [', None, "not valid JSON", id="truncated-json"),
    pytest.param(b"events=1", None, "not valid JSON", id="form"),
    pytest.param(b"", None, "not valid JSON", id="empty"),
    pytest.param(b"[]", None, "got an array", id="array"),
    pytest.param(b'{"events": {}}', "events", "expected an array", id="events-object"),
    pytest.param(b"{}", "events", "missing", id="no-events"),
    pytest.param(b'{"events": [], "dry_run": true}', "dry_run", "unknown field", id="unknown"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_BODIES)
def test_a_bad_body_is_refused(
    client: TestClient, api: Api, body: bytes, field: str | None, message: str
) -> None:
    response = client.post(
        "/v1/events",
        content=body,
        headers={**SERVER_HEADERS, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["index"] is None
    assert error["field"] == field
    assert message in error["message"]
    assert count(api.store, events) == 0


def test_an_empty_batch_is_fine(client: TestClient) -> None:
    assert post_events(client, []).json() == {"accepted": 0, "duplicates": 0}


def test_too_many_items_is_413(store: Store) -> None:
    store.upgrade()
    small = make_api(store, max_batch=2)
    with TestClient(small.app) as client:
        add_customers(client, "c1")
        response = post_events(client, [event(), event(), event()])
        assert response.status_code == 413
        [error] = response.json()["detail"]
        assert error["field"] == "events"
        assert "3 events in one request; at most 2" in error["message"]
        response = client.post(
            "/v1/customers",
            json={"customers": [{"id": "a"}, {"id": "b"}, {"id": "c"}]},
            headers=SERVER_HEADERS,
        )
        assert response.status_code == 413
    assert count(store, events) == 0
    assert count(store, customers) == 1


def test_a_body_over_max_body_bytes_is_413(store: Store) -> None:
    store.upgrade()
    small = make_api(store, max_body_bytes=1024)
    with TestClient(small.app) as client:
        add_customers(client, "c1")
        response = post_events(client, [event(note="x" * 2000)])
        assert response.status_code == 413
        assert "larger than 1,024 bytes" in response.text
    assert count(store, events) == 0


# --- keys ----------------------------------------------------------------------------------

ENDPOINTS = [
    ("/v1/events", {"events": []}),
    ("/v1/customers", {"customers": []}),
    ("/v1/push-tokens", {"customer_id": "c1", "platform": "ios", "token": "t"}),
]


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_a_missing_or_wrong_key_is_401(client: TestClient, path: str, body: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 401, headers
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_no_configured_key_is_503(api: Api, path: str, body: Any) -> None:
    keyless = create_app(
        api.settings, api.store, secrets=ApiSecrets(api_key=None), signer=api.signer
    )
    with TestClient(keyless) as client:
        response = client.post(path, json=body, headers=SERVER_HEADERS)
    assert response.status_code == 503
    assert "api_key_env" in response.json()["detail"]


# --- customers -----------------------------------------------------------------------------


def test_customers_are_inserted_then_merged(client: TestClient, api: Api) -> None:
    first = {"id": "c1", "email": "ana@example.com", "country": "es", "tier": "gold"}
    response = client.post("/v1/customers", json={"customers": [first]}, headers=SERVER_HEADERS)
    assert response.json() == {"inserted": 1, "updated": 0}
    change = {"id": "c1", "city": "Madrid", "email": None, "email_consent": True}
    response = client.post(
        "/v1/customers",
        json={"customers": [change, {"id": "c2"}]},
        headers=SERVER_HEADERS,
    )
    assert response.json() == {"inserted": 1, "updated": 1}
    with api.store.connect() as conn:
        row = conn.execute(select(customers).where(customers.c.id == "c1")).mappings().one()
        consent = conn.execute(select(consents)).mappings().one()
    assert (row["email"], row["country"], row["city"]) == (None, "ES", "Madrid")
    assert row["attributes"] == {"tier": "gold"}
    assert (consent["channel"], consent["granted"]) == ("email", True)
    assert consent["source"] == "api: POST /v1/customers"


def test_a_bad_customer_refuses_the_batch(client: TestClient, api: Api) -> None:
    response = client.post(
        "/v1/customers",
        json={
            "customers": [
                {"id": "c1"},
                {"id": "c2", "email": "not-an-email"},
                {"email": "x@example.com"},
                {"id": "c4", "timezone": "Mars/Olympus"},
                {"id": "c5", "email_consent": "maybe"},
                "c6",
            ]
        },
        headers=SERVER_HEADERS,
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(e["index"], e["field"]) for e in detail] == [
        (1, "email"),
        (2, "id"),
        (3, "timezone"),
        (4, "email_consent"),
        (5, None),
    ]
    assert "not an email address" in detail[0]["message"]
    assert count(api.store, customers) == 0


def test_customers_body_takes_only_customers(client: TestClient, api: Api) -> None:
    response = client.post(
        "/v1/customers",
        json={"customers": [{"id": "c1"}], "mode": "replace"},
        headers=SERVER_HEADERS,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "mode"
    assert count(api.store, customers) == 0


# --- push tokens ---------------------------------------------------------------------------


def tokens(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(select(device_tokens)).mappings().all()]


def test_a_push_token_is_registered_and_moves_between_customers(
    client: TestClient, api: Api
) -> None:
    add_customers(client, "c1", "c2")
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    api.app.state.narrowcast.clock = lambda: now
    body = {"customer_id": "c1", "platform": "ios", "token": "tok-1"}
    response = client.post("/v1/push-tokens", json=body, headers=SERVER_HEADERS)
    assert response.json() == {"created": True, "moved": False}
    [row] = tokens(api.store)
    assert (row["customer_id"], row["platform"], row["created_at"]) == ("c1", "ios", now)

    with api.store.begin() as conn:  # the provider said the token died
        conn.execute(device_tokens.update().values(invalidated_at=now))
    later = now + timedelta(days=3)
    api.app.state.narrowcast.clock = lambda: later
    body = {"customer_id": "c2", "platform": "ios", "token": "tok-1"}
    response = client.post("/v1/push-tokens", json=body, headers=SERVER_HEADERS)
    assert response.json() == {"created": False, "moved": True}
    [row] = tokens(api.store)
    assert row["customer_id"] == "c2"
    assert (row["created_at"], row["last_seen_at"], row["invalidated_at"]) == (now, later, None)

    response = client.post("/v1/push-tokens", json=body, headers=SERVER_HEADERS)
    assert response.json() == {"created": False, "moved": False}


BAD_TOKENS = [
    pytest.param({"customer_id": "c1", "platform": "blackberry", "token": "t"}, "platform"),
    pytest.param({"customer_id": "c1", "platform": "ios"}, "token"),
    pytest.param({"customer_id": "c1", "platform": "ios", "token": ""}, "token"),
    pytest.param({"customer_id": 7, "platform": "ios", "token": "t"}, "customer_id"),
    pytest.param({"customer_id": "c1", "platform": "ios", "token": "t", "x": 1}, "x"),
    pytest.param({"customer_id": "nobody", "platform": "ios", "token": "t"}, "customer_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_TOKENS)
def test_a_bad_push_token_is_refused(client: TestClient, api: Api, body: Any, field: str) -> None:
    add_customers(client, "c1")
    response = client.post("/v1/push-tokens", json=body, headers=SERVER_HEADERS)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == field
    assert error["message"]
    assert tokens(api.store) == []


def test_push_token_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/push-tokens", content=b"{", headers=SERVER_HEADERS)
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"][0]["message"]


# --- the schema ----------------------------------------------------------------------------


def test_the_openapi_schema_describes_the_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    raw = orjson.dumps(schema).decode()
    assert "#/$defs/" not in raw  # every $ref must resolve inside the OpenAPI document
    events_op = schema["paths"]["/v1/events"]["post"]
    body = events_op["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["events"]["items"]["required"] == ["customer_id", "type", "ts"]
    assert "POST /v1/customers" in events_op["description"]
    for path in ("/v1/customers", "/v1/push-tokens"):
        operation = schema["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert operation["description"]
