"""Web messages over HTTP, on SQLite and PostgreSQL: targeting, per-visitor state, surveys, CORS.

The browser half (the snippet in a real chromium) is ``test_browser_web.py``.
"""

from __future__ import annotations

import fnmatch
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from narrowcast.store import Store
from narrowcast.store.schema import customers, events, web_messages, web_views

from .conftest import SHOP_ORIGIN, Api

NOW = datetime.now(UTC).replace(microsecond=0)
VISITOR = "3f2c9a1e-5b7d-4c21-9e0f-1a2b3c4d5e6f"
OTHER_VISITOR = "0aa11bb22cc33dd44ee55ff66"
_outbox_ids = itertools.count(1000)


def _customers(store: Store, *ids: str) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [{"id": i, "created_at": NOW, "updated_at": NOW, "attributes": {}} for i in ids],
        )


def web_message(store: Store, title: str, **row: Any) -> int:
    """Insert a web message for anyone, shown everywhere, unless ``row`` says otherwise."""
    values: dict[str, Any] = {
        "outbox_id": next(_outbox_ids),
        "customer_id": None,
        "campaign": "guide",
        "variant": None,
        "placement": "banner",
        "visitor": "any",
        "referrers": [],
        "path": "*",
        "survey": None,
        "parts": {"title": title, "body": "Body of " + title},
        "created_at": NOW - timedelta(hours=1),
        **row,
    }
    with store.begin() as conn:
        new_id: int = conn.execute(insert(web_messages).values(values)).inserted_primary_key[0]
    return new_id


def shown(client: TestClient, headers: dict[str, str] | None = None, **params: str) -> list[str]:
    query = {"visitor": VISITOR, **params}
    response = client.get("/v1/web-messages", params=query, headers=headers or {})
    assert response.status_code == 200, response.text
    return [m["title"] for m in response.json()["messages"]]


def views(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(web_views).order_by(web_views.c.visitor)).mappings().all()
    return [dict(row) for row in rows]


def recorded(store: Store) -> list[dict[str, Any]]:
    with store.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.id)).mappings().all()
    return [dict(row) for row in rows]


# --- targeting -------------------------------------------------------------------------


def test_targeting_by_visitor_referrer_and_expiry(api: Api, client: TestClient) -> None:
    web_message(api.store, "guide", visitor="new", referrers=["search"], placement="modal")
    web_message(api.store, "advanced", visitor="returning", placement="toast")
    web_message(api.store, "social hello", referrers=["social", "email"], placement="banner")
    web_message(api.store, "gone", expires_at=NOW - timedelta(minutes=1), placement="banner")

    assert shown(client, returning="false", referrer="search") == ["guide"]
    assert shown(client, returning="true", referrer="search") == ["advanced"]
    assert shown(client, returning="true", referrer="email") == ["social hello", "advanced"]
    assert shown(client, returning="false", referrer="direct") == []
    # Defaults: a new visitor coming directly to the home page.
    assert shown(client) == []


def _reference_glob(glob: str, path: str) -> bool:
    """What the docstring of ``narrowcast.api.web`` promises: ``*`` and ``?``, nothing else."""
    return fnmatch.fnmatchcase(path, glob.replace("[", "[[]"))


GLOBS = ["*", "/", "/shoes/*", "/shoes/*/sale", "/p?ge", "/100%_off*", "/a[b]c", "/Shoes/*"]
PATHS = ["/", "/shoes/", "/shoes/boots", "/shoes/boots/sale", "/page", "/pages",
         "/100%_off/now", "/100xxoff", "/a[b]c", "/abc", "/Shoes/x"]  # fmt: skip


@pytest.mark.parametrize("glob", GLOBS)
def test_path_globs_match_like_fnmatch_on_both_databases(
    api: Api, client: TestClient, glob: str
) -> None:
    web_message(api.store, glob, path=glob)
    for path in PATHS:
        expected = [glob] if _reference_glob(glob, path) else []
        assert shown(client, path=path) == expected, (glob, path)


def test_one_message_per_placement_customer_first_then_newest(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1", "c2")
    web_message(api.store, "old banner", created_at=NOW - timedelta(days=2))
    web_message(api.store, "new banner", created_at=NOW - timedelta(days=1))
    web_message(api.store, "c1 banner", customer_id="c1", created_at=NOW - timedelta(days=3))
    web_message(api.store, "c2 toast", customer_id="c2", placement="toast")
    same_time = NOW - timedelta(hours=5)
    web_message(api.store, "modal a", placement="modal", created_at=same_time)
    web_message(api.store, "modal b", placement="modal", created_at=same_time)

    assert shown(client) == ["new banner", "modal b"]
    assert shown(client, headers=api.customer_headers("c1")) == ["c1 banner", "modal b"]
    assert shown(client, headers=api.customer_headers("c2")) == [
        "new banner",
        "modal b",
        "c2 toast",
    ]


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://shop.test/boots?a=1", True),
        ("http://shop.test/", True),
        ("/boots", True),
        (" javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:x", False),
        ("boots", False),
        ("https:///nohost", False),
    ],
)
def test_only_web_links_and_shop_paths_are_passed_on(
    api: Api, client: TestClient, url: str, kept: bool
) -> None:
    web_message(api.store, "x", parts={"title": "x", "body": "y", "cta_url": url, "image": url})
    (message,) = client.get("/v1/web-messages", params={"visitor": VISITOR}).json()["messages"]
    expected = url.strip() if kept else None
    assert message["cta_url"] == message["image"] == expected


def test_parts_reach_the_page_but_only_web_links(api: Api, client: TestClient) -> None:
    message_id = web_message(
        api.store,
        "x",
        survey="nps",
        campaign="nps-q3",
        parts={
            "title": "<b>How are we doing?</b>",
            "body": "Tell us",
            "cta_label": "Go",
            "cta_url": "javascript:alert(1)",
            "image": "data:image/png;base64,AAAA",
        },
    )
    response = client.get("/v1/web-messages", params={"visitor": VISITOR})
    assert response.json() == {
        "messages": [
            {
                "id": message_id,
                "campaign": "nps-q3",
                "placement": "banner",
                "survey": "nps",
                "title": "<b>How are we doing?</b>",
                "body": "Tell us",
                "cta_label": "Go",
                "cta_url": None,
                "image": None,
            }
        ]
    }


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "visitor"),
        ({"visitor": "short"}, "visitor"),
        ({"visitor": "has spaces in it"}, "visitor"),
        ({"visitor": VISITOR, "referrer": "carrier-pigeon"}, "referrer"),
        ({"visitor": VISITOR, "returning": "perhaps"}, "returning"),
        ({"visitor": VISITOR, "path": "shoes"}, "path"),
        ({"visitor": VISITOR, "path": "/" + "x" * 2000}, "path"),
    ],
)
def test_bad_query_parameters_are_refused_naming_the_parameter(
    api: Api, client: TestClient, params: dict[str, str], name: str
) -> None:
    response = client.get("/v1/web-messages", params=params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", name]]


def test_a_bad_customer_token_is_refused_not_ignored(api: Api, client: TestClient) -> None:
    web_message(api.store, "for anyone")
    headers = {"Authorization": "Bearer v1.YzE.9999999999.forged"}
    response = client.get("/v1/web-messages", params={"visitor": VISITOR}, headers=headers)
    assert response.status_code == 401


# --- what visitors did ---------------------------------------------------------------------


def test_seen_counts_views_until_the_limit(api: Api, client: TestClient) -> None:
    message_id = web_message(api.store, "hello")
    for _ in range(3):  # web_max_views defaults to 3
        assert shown(client) == ["hello"]
        seen = client.post(f"/v1/web-messages/{message_id}/seen", json={"visitor": VISITOR})
        assert seen.status_code == 204
    assert shown(client) == []
    assert shown(client, visitor=OTHER_VISITOR) == ["hello"]
    (row,) = views(api.store)
    assert row["visitor"] == f"v:{VISITOR}" and row["views"] == 3
    assert row["first_seen_at"] <= row["last_seen_at"]
    assert row["clicked_at"] is None and row["dismissed_at"] is None
    assert recorded(api.store) == []  # anonymous visitors leave no events


@pytest.mark.parametrize(
    ("action", "column"), [("click", "clicked_at"), ("dismiss", "dismissed_at")]
)
def test_a_click_or_dismiss_ends_the_message_for_that_visitor(
    api: Api, client: TestClient, action: str, column: str
) -> None:
    message_id = web_message(api.store, "hello")
    client.post(f"/v1/web-messages/{message_id}/seen", json={"visitor": VISITOR})
    response = client.post(f"/v1/web-messages/{message_id}/{action}", json={"visitor": VISITOR})
    assert response.status_code == 204
    first = views(api.store)[0][column]
    assert first is not None
    client.post(f"/v1/web-messages/{message_id}/{action}", json={"visitor": VISITOR})
    (row,) = views(api.store)
    assert row[column] == first and row["views"] == 1
    assert shown(client) == []
    assert shown(client, visitor=OTHER_VISITOR) == ["hello"]


def test_a_known_customer_leaves_engagement_events_once(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1")
    anyone = web_message(api.store, "for anyone", campaign="guide", variant="b")
    theirs = web_message(api.store, "for c1", customer_id="c1", placement="toast")
    headers = api.customer_headers("c1")
    for message_id in (anyone, theirs):
        for action in ("seen", "seen", "click", "dismiss", "dismiss"):
            response = client.post(
                f"/v1/web-messages/{message_id}/{action}",
                json={"visitor": VISITOR},
                headers=headers,
            )
            assert response.status_code == 204

    kinds = [(e["type"], e["properties"]["web_message_id"]) for e in recorded(api.store)]
    assert kinds == [
        ("message_seen", anyone),
        ("message_clicked", anyone),
        ("message_dismissed", anyone),
        ("message_seen", theirs),
        ("message_clicked", theirs),
        ("message_dismissed", theirs),
    ]
    first = recorded(api.store)[0]
    assert first["customer_id"] == "c1" and first["event_id"] == f"web:{anyone}:seen:c1"
    assert first["properties"] == {
        "outbox_id": first["properties"]["outbox_id"],
        "campaign": "guide",
        "variant": "b",
        "channel": "web",
        "web_message_id": anyone,
    }
    assert {row["visitor"] for row in views(api.store)} == {"c:c1"}
    with api.store.connect() as conn:
        by_id = {
            row.id: row
            for row in conn.execute(
                select(web_messages.c.id, web_messages.c.seen_at, web_messages.c.dismissed_at)
            )
        }
    # The message's own instants are its customer's; a message for anyone keeps none.
    assert by_id[theirs].seen_at is not None and by_id[theirs].dismissed_at is not None
    assert by_id[anyone].seen_at is None


def test_a_dismiss_as_customer_also_hides_it_from_their_anonymous_id(
    api: Api, client: TestClient
) -> None:
    _customers(api.store, "c1")
    message_id = web_message(api.store, "hello")
    headers = api.customer_headers("c1")
    client.post(
        f"/v1/web-messages/{message_id}/dismiss", json={"visitor": VISITOR}, headers=headers
    )
    assert shown(client, headers=headers, visitor=OTHER_VISITOR) == []
    # Without the token the browser could be anybody's: the anonymous id alone decides.
    assert shown(client, visitor=VISITOR) == ["hello"]


def test_messages_of_other_customers_are_404(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1", "c2")
    theirs = web_message(api.store, "for c2", customer_id="c2", survey="nps")
    for headers in ({}, api.customer_headers("c1")):
        for action, body in [
            ("seen", {"visitor": VISITOR}),
            ("click", {"visitor": VISITOR}),
            ("dismiss", {"visitor": VISITOR}),
            ("answer", {"visitor": VISITOR, "score": 9}),
        ]:
            response = client.post(
                f"/v1/web-messages/{theirs}/{action}", json=body, headers=headers
            )
            assert response.status_code == 404, (headers, action)
    missing = client.post("/v1/web-messages/999999/seen", json={"visitor": VISITOR})
    assert missing.status_code == 404
    assert views(api.store) == [] and recorded(api.store) == []


def test_a_customer_the_store_does_not_know_yet_is_counted_without_an_event(
    api: Api, client: TestClient
) -> None:
    message_id = web_message(api.store, "hello", survey="nps")
    headers = api.customer_headers("not-imported-yet")
    for action, body in [("seen", {}), ("answer", {"score": 3})]:
        response = client.post(
            f"/v1/web-messages/{message_id}/{action}",
            json={"visitor": VISITOR, **body},
            headers=headers,
        )
        assert response.status_code == 204
    (row,) = views(api.store)
    assert row["visitor"] == "c:not-imported-yet" and row["answered_at"] is not None
    assert recorded(api.store) == []


# --- surveys -----------------------------------------------------------------------------


def test_an_nps_answer_becomes_an_nps_response_event(api: Api, client: TestClient) -> None:
    _customers(api.store, "c1")
    message_id = web_message(api.store, "How likely…", survey="nps", campaign="nps-q3")
    headers = api.customer_headers("c1")
    for score in (9, 2):  # the first answer counts
        response = client.post(
            f"/v1/web-messages/{message_id}/answer",
            json={"visitor": VISITOR, "score": score},
            headers=headers,
        )
        assert response.status_code == 204

    (event,) = recorded(api.store)
    assert event["type"] == "nps_response" and event["customer_id"] == "c1"
    assert event["properties"]["score"] == 9 and type(event["properties"]["score"]) is int
    assert event["properties"]["campaign"] == "nps-q3"
    assert event["properties"]["web_message_id"] == message_id
    (row,) = views(api.store)
    assert row["answered_at"] is not None
    assert shown(client, headers=headers) == []


def test_an_anonymous_answer_only_ends_the_survey(api: Api, client: TestClient) -> None:
    message_id = web_message(api.store, "How likely…", survey="nps")
    response = client.post(
        f"/v1/web-messages/{message_id}/answer", json={"visitor": VISITOR, "score": 10}
    )
    assert response.status_code == 204
    assert views(api.store)[0]["answered_at"] is not None
    assert recorded(api.store) == []
    assert shown(client) == []


@pytest.mark.parametrize("score", [-1, 11, "7", 7.5, True, None])
def test_bad_scores_are_refused(api: Api, client: TestClient, score: object) -> None:
    message_id = web_message(api.store, "How likely…", survey="nps")
    response = client.post(
        f"/v1/web-messages/{message_id}/answer", json={"visitor": VISITOR, "score": score}
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "score"]]
    assert views(api.store) == []


def test_answering_a_message_without_a_survey_is_refused(api: Api, client: TestClient) -> None:
    message_id = web_message(api.store, "plain")
    response = client.post(
        f"/v1/web-messages/{message_id}/answer", json={"visitor": VISITOR, "score": 5}
    )
    assert response.status_code == 422 and "no survey" in response.json()["detail"]


def test_report_bodies_are_validated(api: Api, client: TestClient) -> None:
    message_id = web_message(api.store, "hello")
    for body in [{}, {"visitor": "x"}, {"visitor": VISITOR, "extra": 1}]:
        response = client.post(f"/v1/web-messages/{message_id}/seen", json=body)
        assert response.status_code == 422, body


# --- the snippet and CORS ---------------------------------------------------------------------


def test_the_snippet_is_served_with_cache_headers(api: Api, client: TestClient) -> None:
    response = client.get("/v1/narrowcast.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert "max-age=" in response.headers["cache-control"]
    assert "document.currentScript" in response.text and "innerHTML" not in response.text
    again = client.get("/v1/narrowcast.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_cors_allows_the_shop_and_nobody_else(api: Api, client: TestClient) -> None:
    web_message(api.store, "hello")
    params = {"visitor": VISITOR}
    allowed = client.get("/v1/web-messages", params=params, headers={"Origin": SHOP_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == SHOP_ORIGIN
    other = client.get("/v1/web-messages", params=params, headers={"Origin": "http://evil.test"})
    assert other.status_code == 200  # CORS is enforced by the browser, on this header:
    assert "access-control-allow-origin" not in other.headers

    def preflight(origin: str) -> Any:
        return client.options(
            "/v1/web-messages/1/dismiss",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )

    ok = preflight(SHOP_ORIGIN)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SHOP_ORIGIN
    refused = preflight("http://evil.test")
    assert "access-control-allow-origin" not in refused.headers
