"""The in-app inbox over HTTP, on SQLite and PostgreSQL: listing, marking, engagement, auth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from narrowcast.api.identity import sign_customer
from narrowcast.store import Store
from narrowcast.store.schema import customers, events, inbox_messages

from .conftest import IDENTITY_SECRET, Api

NOW = datetime.now(UTC).replace(microsecond=0)


def _customers(store: Store, *ids: str) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [{"id": i, "created_at": NOW, "updated_at": NOW, "attributes": {}} for i in ids],
        )


def _message(store: Store, outbox_id: int, customer: str, **row: Any) -> int:
    values: dict[str, Any] = {
        "outbox_id": outbox_id,
        "customer_id": customer,
        "campaign": "arrivals",
        "variant": "a",
        "parts": {"title": f"Title {outbox_id}", "body": "Have a look"},
        "created_at": NOW - timedelta(minutes=100 - outbox_id),
        **row,
    }
    with store.begin() as conn:
        new_id: int = conn.execute(insert(inbox_messages).values(values)).inserted_primary_key[0]
    return new_id


def _events(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.id)).mappings().all()
    return [dict(row) for row in rows]


def _row(store: Store, message_id: int) -> dict[str, Any]:
    with store.connect() as conn:
        row = conn.execute(select(inbox_messages).where(inbox_messages.c.id == message_id))
        return dict(row.mappings().one())


def test_lists_unread_unexpired_undismissed_newest_first(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1", "c2")
    older = _message(
        api.store,
        1,
        "c1",
        parts={
            "title": "Boots are back",
            "body": "In every size",
            "cta_label": "Shop",
            "cta_url": "https://shop.test/boots",
            "image": "https://shop.test/boots.png",
        },
    )
    newer = _message(api.store, 2, "c1")
    _message(api.store, 3, "c1", read_at=NOW)
    _message(api.store, 4, "c1", dismissed_at=NOW)
    _message(api.store, 5, "c1", expires_at=NOW - timedelta(seconds=1))
    later = _message(api.store, 6, "c1", expires_at=NOW + timedelta(days=1))
    _message(api.store, 7, "c2")

    response = client.get("/v1/inbox", headers=api.customer_headers("c1"))
    assert response.status_code == 200
    listed = response.json()["messages"]
    assert [m["id"] for m in listed] == [later, newer, older]
    first = listed[-1]
    assert first == {
        "id": older,
        "campaign": "arrivals",
        "title": "Boots are back",
        "body": "In every size",
        "cta_label": "Shop",
        "cta_url": "https://shop.test/boots",
        "image": "https://shop.test/boots.png",
        "created_at": first["created_at"],
        "expires_at": None,
        "read": False,
    }
    assert datetime.fromisoformat(first["created_at"]) == NOW - timedelta(minutes=99)

    with_read = client.get("/v1/inbox?include_read=true", headers=api.customer_headers("c1"))
    titles = [(m["title"], m["read"]) for m in with_read.json()["messages"]]
    assert titles == [
        ("Title 6", False),
        ("Title 3", True),
        ("Title 2", False),
        ("Boots are back", False),
    ]


@pytest.mark.parametrize(
    ("action", "column", "event_type"),
    [
        ("read", "read_at", "message_read"),
        ("click", "clicked_at", "message_clicked"),
        ("dismiss", "dismissed_at", "message_dismissed"),
    ],
)
def test_marking_sets_the_first_instant_and_records_one_event(
    api: Api, client: TestClient, action: str, column: str, event_type: str
) -> None:
    _customers(api.store, "c1")
    message_id = _message(api.store, 41, "c1")
    headers = api.customer_headers("c1")

    first = client.post(f"/v1/inbox/{message_id}/{action}", headers=headers)
    assert first.status_code == 204 and first.content == b""
    marked = _row(api.store, message_id)[column]
    assert marked is not None
    assert client.post(f"/v1/inbox/{message_id}/{action}", headers=headers).status_code == 204
    assert _row(api.store, message_id)[column] == marked  # the first one wins

    recorded = _events(api.store)
    assert len(recorded) == 1
    event = recorded[0]
    assert event["type"] == event_type and event["customer_id"] == "c1"
    kind = event_type.removeprefix("message_")
    assert event["event_id"] == f"inapp:{message_id}:{kind}"
    assert event["properties"] == {
        "outbox_id": 41,
        "campaign": "arrivals",
        "variant": "a",
        "channel": "in_app",
        "inbox_message_id": message_id,
    }


def test_read_and_dismissed_messages_leave_the_list(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1")
    read, clicked, dismissed = (_message(api.store, n, "c1") for n in (1, 2, 3))
    headers = api.customer_headers("c1")
    client.post(f"/v1/inbox/{read}/read", headers=headers)
    client.post(f"/v1/inbox/{clicked}/click", headers=headers)
    client.post(f"/v1/inbox/{dismissed}/dismiss", headers=headers)

    assert client.get("/v1/inbox", headers=headers).json()["messages"] == []
    everything = client.get("/v1/inbox?include_read=true", headers=headers).json()["messages"]
    assert [(m["id"], m["read"]) for m in everything] == [(clicked, True), (read, True)]
    # A click counts as a read of the message, but only the click is an event.
    assert _row(api.store, clicked)["read_at"] is not None
    assert [e["type"] for e in _events(api.store)] == [
        "message_read",
        "message_clicked",
        "message_dismissed",
    ]


def test_another_customers_message_is_indistinguishable_from_a_missing_one(
    api: Api, client: TestClient
) -> None:
    _customers(api.store, "c1", "c2")
    theirs = _message(api.store, 1, "c2")
    headers = api.customer_headers("c1")

    for action in ("read", "click", "dismiss"):
        hidden = client.post(f"/v1/inbox/{theirs}/{action}", headers=headers)
        missing = client.post(f"/v1/inbox/{theirs + 1000}/{action}", headers=headers)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace(str(theirs), "N") == missing.json()[
            "detail"
        ].replace(str(theirs + 1000), "N")
    row = _row(api.store, theirs)
    assert row["read_at"] is None and row["clicked_at"] is None and row["dismissed_at"] is None
    assert _events(api.store) == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        "Basic Yzox",
        "Bearer v1.YzE.9999999999.forged",
        "Bearer " + sign_customer(IDENTITY_SECRET, "c1", NOW - timedelta(seconds=1)),
        "Bearer " + sign_customer(b"some-other-secret-0123456789", "c1", NOW + timedelta(hours=1)),
    ],
    ids=["missing", "empty", "basic", "forged", "expired", "other-secret"],
)
def test_every_inbox_endpoint_needs_a_genuine_customer_token(
    api: Api, client: TestClient, authorization: str | None
) -> None:
    _customers(api.store, "c1")
    message_id = _message(api.store, 1, "c1")
    headers = {} if authorization is None else {"Authorization": authorization}
    calls = [("GET", "/v1/inbox")] + [
        ("POST", f"/v1/inbox/{message_id}/{a}") for a in ("read", "click", "dismiss")
    ]
    for method, url in calls:
        response = client.request(method, url, headers=headers)
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    assert _row(api.store, message_id)["read_at"] is None


def test_limit_is_validated(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1")
    for n in range(1, 4):
        _message(api.store, n, "c1")
    headers = api.customer_headers("c1")
    assert len(client.get("/v1/inbox?limit=2", headers=headers).json()["messages"]) == 2
    bad = client.get("/v1/inbox?limit=0", headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]
