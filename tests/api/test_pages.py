"""The unsubscribe page, the preference centre and the click redirect, over a real store.

Also the seeding helpers the webhook and browser tests share: customers and
outbox rows written the way planning and dispatch write them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from narrowcast.render.links import Links
from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs, consents, customers, events, outbox, suppressions
from tests.api.conftest import Api

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EVIL_NAME = '<script>alert("x")</script>&<b>'


# --- seeding ------------------------------------------------------------------------------


def add_customer(
    store: Store,
    customer_id: str,
    *,
    email: str | None = None,
    first_name: str | None = None,
    locale: str | None = None,
    phone: str | None = None,
    marketing: dict[str, bool] | None = None,
) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            {
                "id": customer_id,
                "email": email,
                "first_name": first_name,
                "locale": locale,
                "phone": phone,
                "created_at": NOW,
                "updated_at": NOW,
                "attributes": {},
            },
        )
        for channel, granted in (marketing or {}).items():
            conn.execute(
                insert(consents),
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "purpose": "marketing",
                    "granted": granted,
                    "source": "signup",
                    "updated_at": NOW,
                },
            )


def add_outbox(
    store: Store,
    customer_id: str,
    *,
    campaign: str = "spring-sale",
    variant: str | None = "a",
    channel: str = "email",
    provider_id: str | None = None,
) -> int:
    with store.begin() as conn:
        run_id = conn.execute(
            insert(campaign_runs).returning(campaign_runs.c.id),
            {
                "campaign": campaign,
                "key": f"{customer_id}-{provider_id}-{channel}",
                "kind": "manual",
                "occurrence": NOW,
                "state": "planned",
                "created_at": NOW,
            },
        ).scalar_one()
        outbox_id: int = conn.execute(
            insert(outbox).returning(outbox.c.id),
            {
                "run_id": run_id,
                "campaign": campaign,
                "customer_id": customer_id,
                "dedupe_key": f"{campaign}/{run_id}/{customer_id}",
                "variant": variant,
                "channel": channel,
                "purpose": "marketing",
                "priority": 0,
                "state": "sent",
                "send_at": NOW,
                "expires_at": NOW + timedelta(days=1),
                "provider": "sendgrid" if provider_id else None,
                "provider_id": provider_id,
                "created_at": NOW,
                "updated_at": NOW,
                "sent_at": NOW,
            },
        ).scalar_one()
    return outbox_id


def marketing_consent(store: Store, customer_id: str) -> dict[str, tuple[bool, str]]:
    k = consents.c
    with store.connect() as conn:
        rows = conn.execute(
            select(k.channel, k.granted, k.source).where(
                k.customer_id == customer_id, k.purpose == "marketing"
            )
        )
        return {channel: (bool(granted), source) for channel, granted, source in rows}


def engagement(store: Store, type_: str | None = None) -> list[dict[str, Any]]:
    e = events.c
    query = select(e.event_id, e.customer_id, e.type, e.ts, e.properties).order_by(e.id)
    if type_ is not None:
        query = query.where(e.type == type_)
    with store.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def suppressed(store: Store) -> dict[str, str]:
    with store.connect() as conn:
        rows = conn.execute(select(suppressions.c.address, suppressions.c.reason))
        return {address: reason for address, reason in rows}


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def checked(page: str) -> set[str]:
    return set(re.findall(r'name="marketing"\s+value="([a-z_]+)" checked', page))


# --- the unsubscribe page -------------------------------------------------------------------


def test_unsubscribe_links_point_at_u(api: Api) -> None:
    assert "/u/" in api.links.unsubscribe("c-1", channel="email")
    assert "/u/" in api.links.preferences("c-1")


def test_unsubscribe_page_shows_one_button_and_changes_nothing(
    api: Api, client: TestClient
) -> None:
    add_customer(api.store, "c-1", email="ana@example.com", marketing={"email": True})
    response = client.get(path_of(api.links.unsubscribe("c-1", channel="email")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Unsubscribe from email marketing" in response.text
    assert 'name="action" value="unsubscribe"' in response.text
    assert "Manage all your preferences" in response.text
    assert "<script" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # A GET (a link scanner, a preview) unsubscribes nobody.
    assert marketing_consent(api.store, "c-1") == {"email": (True, "signup")}


def test_the_button_unsubscribes_and_confirms(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="ana@example.com", marketing={"email": True})
    path = path_of(api.links.unsubscribe("c-1", channel="email", purpose="marketing"))
    response = client.post(path, data={"action": "unsubscribe"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert "email" not in checked(response.text)
    assert marketing_consent(api.store, "c-1") == {"email": (False, "preference centre")}
    [event] = engagement(api.store, "message_unsubscribed")
    assert event["customer_id"] == "c-1"
    assert event["properties"] == {"channel": "email", "source": "preference centre"}
    # Pressing it again changes nothing and records no second unsubscribe.
    assert client.post(path, data={"action": "unsubscribe"}).status_code == 200
    assert len(engagement(api.store, "message_unsubscribed")) == 1


def test_a_token_without_channel_unsubscribes_from_every_channel(
    api: Api, client: TestClient
) -> None:
    add_customer(api.store, "c-1", email="a@example.com", marketing={"email": True, "push": True})
    path = path_of(api.links.unsubscribe("c-1"))
    assert "Unsubscribe from all marketing" in client.get(path).text
    client.post(path, data={"action": "unsubscribe"})
    consent = marketing_consent(api.store, "c-1")
    assert {ch for ch, (granted, _) in consent.items() if not granted} == {
        "email",
        "push",
        "in_app",
        "web",
    }
    assert len(engagement(api.store, "message_unsubscribed")) == 4


def test_rfc8058_one_click(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="ana@example.com", marketing={"email": True})
    response = client.post(
        path_of(api.links.unsubscribe("c-1", channel="email")),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.text == "unsubscribed\n"
    assert marketing_consent(api.store, "c-1") == {"email": (False, "one-click unsubscribe")}
    [event] = engagement(api.store, "message_unsubscribed")
    assert event["properties"]["source"] == "one-click unsubscribe"


def test_one_click_as_multipart_and_on_the_old_path(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="ana@example.com", marketing={"email": True})
    old = "/unsubscribe/" + api.signer.unsubscribe("c-1", channel="email")
    response = client.post(old, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert marketing_consent(api.store, "c-1")["email"][0] is False


def test_one_click_for_a_deleted_customer_is_still_200(api: Api, client: TestClient) -> None:
    response = client.post(
        path_of(api.links.unsubscribe("gone", channel="email")),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    page = client.get(path_of(api.links.unsubscribe("gone", channel="email")))
    assert page.status_code == 404
    assert "could not find your subscription" in page.text


# --- the preference centre ------------------------------------------------------------------


def test_preference_centre_shows_what_the_gate_will_do(api: Api, client: TestClient) -> None:
    # Email and push marketing need consent; in-app and web only need no refusal.
    add_customer(api.store, "c-1", email="a@example.com", marketing={"push": True, "web": False})
    page = client.get(path_of(api.links.preferences("c-1"))).text
    assert "Your message preferences" in page
    assert checked(page) == {"push", "in_app"}
    assert 'value="sms"' not in page  # no phone, no SMS row
    assert "Service messages" in page and "not optional" in page
    assert 'name="action" value="unsubscribe"' not in page


def test_saving_preferences(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="A@Example.com", phone="+34600000000")
    with api.store.begin() as conn:
        conn.execute(
            insert(suppressions),
            {
                "channel": "email",
                "address": "a@example.com",
                "reason": "unsubscribed",
                "source": "sendgrid event webhook",
                "created_at": NOW,
            },
        )
    path = path_of(api.links.preferences("c-1"))
    assert 'value="sms" checked' in client.get(path).text
    response = client.post(path, data={"action": "save", "marketing": ["email", "sms", "bogus"]})
    assert response.status_code == 200
    assert "Your preferences are saved" in response.text
    assert checked(response.text) == {"email", "sms"}
    assert marketing_consent(api.store, "c-1") == {
        "email": (True, "preference centre"),
        "push": (False, "preference centre"),
        "sms": (True, "preference centre"),
        "in_app": (False, "preference centre"),
        "web": (False, "preference centre"),
    }
    # Ticking email again is the customer's own request: their unsubscribe is lifted.
    assert suppressed(api.store) == {}
    # in_app and web were allowed before (no refusal): those two are unsubscribes.
    events_ = engagement(api.store, "message_unsubscribed")
    assert sorted(e["properties"]["channel"] for e in events_) == ["in_app", "web"]


def test_spanish_customer_gets_spanish_and_polish_browser_gets_polish(
    api: Api, client: TestClient
) -> None:
    add_customer(api.store, "es-1", email="e@example.com", locale="es-ES")
    add_customer(api.store, "xx-1", email="x@example.com", locale="fr-FR")
    add_customer(api.store, "en-1", email="n@example.com")
    es = client.get(path_of(api.links.unsubscribe("es-1", channel="email")))
    assert '<html lang="es">' in es.text
    assert "Darme de baja de las ofertas por correo electrónico" in es.text
    pl = client.get(
        path_of(api.links.preferences("xx-1")),
        headers={"Accept-Language": "fr;q=1, pl;q=0.8, en;q=0.5"},
    )
    assert '<html lang="pl">' in pl.text and "Zapisz moje ustawienia" in pl.text
    en = client.get(path_of(api.links.preferences("en-1")), headers={"Accept-Language": "de"})
    assert '<html lang="en">' in en.text
    saved = client.post(path_of(api.links.preferences("es-1")), data={"action": "save"})
    assert "Hemos guardado tus preferencias" in saved.text


def test_customer_data_is_escaped(api: Api, client: TestClient) -> None:
    add_customer(
        api.store, "c-1", email='"><img src=x onerror=alert(1)>@x.com', first_name=EVIL_NAME
    )
    for response in (
        client.get(path_of(api.links.unsubscribe("c-1", channel="email"))),
        client.get(path_of(api.links.preferences("c-1"))),
        client.post(path_of(api.links.preferences("c-1")), data={"action": "save"}),
    ):
        assert response.status_code == 200
        assert "<script" not in response.text and "<img" not in response.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;b&gt;" in response.text
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;@x.com" in response.text


# --- broken links ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_broken_tokens_get_a_400_page_and_change_nothing(
    api: Api, client: TestClient, method: str
) -> None:
    add_customer(api.store, "c-1", email="a@example.com", marketing={"email": True})
    token = api.signer.unsubscribe("c-1", channel="email")
    body, mac = token.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    broken = [
        token[:-5],  # truncated signature
        body,  # signature cut off
        token[: len(body) // 2],  # cut in the middle
        f"{flipped}.{mac}",  # tampered payload
        api.signer.click(1, "https://shop.example/"),  # another purpose
        "",
        "not a token at all",
    ]
    for bad in broken:
        response = client.request(
            method,
            "/u/" + bad,
            content=b"List-Unsubscribe=One-Click",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept-Language": "es",
            },
        )
        assert response.status_code == 400, bad
        assert "Este enlace no funciona" in response.text
        assert "último mensaje" in response.text
    assert marketing_consent(api.store, "c-1") == {"email": (True, "signup")}
    assert engagement(api.store) == []


def test_expired_token_is_410(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="a@example.com", marketing={"email": True})
    past = datetime.now(UTC) - timedelta(minutes=1)
    for token in (
        api.signer.sign("unsubscribe", {"c": "c-1", "ch": "email"}, expires_at=past),
        api.signer.preferences("c-1", expires_at=past),
    ):
        response = client.post("/u/" + token, data={"action": "unsubscribe"})
        assert response.status_code == 410
        assert "This link has expired" in response.text
    assert marketing_consent(api.store, "c-1") == {"email": (True, "signup")}


def test_unknown_form_action_is_refused(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="a@example.com", marketing={"email": True})
    response = client.post(path_of(api.links.unsubscribe("c-1")), data={"action": "drop"})
    assert response.status_code == 400
    assert marketing_consent(api.store, "c-1") == {"email": (True, "signup")}


# --- the click redirect ---------------------------------------------------------------------


def test_click_records_and_redirects(api: Api, client: TestClient) -> None:
    add_customer(api.store, "c-1", email="a@example.com")
    outbox_id = add_outbox(api.store, "c-1", campaign="spring-sale", variant="b")
    url = "https://shop.example/p/boots?utm_source=email&x=<1>"
    response = client.get(path_of(api.links.click(outbox_id, url)), follow_redirects=False)
    assert response.status_code == 302
    # The same URL; what cannot go in a header as it is goes percent-encoded.
    assert response.headers["location"] == url.replace("<", "%3C").replace(">", "%3E")
    [event] = engagement(api.store, "message_clicked")
    assert event["customer_id"] == "c-1"
    assert event["properties"] == {
        "outbox_id": outbox_id,
        "campaign": "spring-sale",
        "variant": "b",
        "channel": "email",
        "url": url,
    }


def test_preview_click_redirects_without_recording(api: Api, client: TestClient) -> None:
    response = client.get(
        path_of(api.links.click(None, "https://shop.example/")), follow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/"
    assert engagement(api.store) == []


def test_click_for_an_unknown_outbox_row_still_redirects(api: Api, client: TestClient) -> None:
    response = client.get(
        path_of(api.links.click(987654, "https://shop.example/")), follow_redirects=False
    )
    assert response.status_code == 302
    assert engagement(api.store) == []


def test_no_open_redirect(api: Api, client: TestClient) -> None:
    links: Links = api.links
    good = path_of(links.click(None, "https://shop.example/"))
    for attempt in (
        good + "?url=https://evil.example/",
        good + "?next=//evil.example&redirect=https://evil.example",
    ):
        response = client.get(attempt, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == "https://shop.example/"
    body, mac = good.rsplit("/", 1)[1].split(".")
    # A token signed over another URL, with this token's signature, is refused, not followed.
    other = api.signer.click(None, "https://evil.example/").split(".")[0]
    for bad in (f"{other}.{mac}", good.rsplit("/", 1)[1][:-3], "/https://evil.example", ""):
        response = client.get("/r/" + bad, follow_redirects=False)
        assert response.status_code == 400, bad
        assert "location" not in response.headers
        assert "This link is broken" in response.text
    # An unsubscribe token is not a click token.
    response = client.get("/r/" + api.signer.unsubscribe("c-1"), follow_redirects=False)
    assert response.status_code == 400


def test_expired_click_is_410(api: Api, client: TestClient) -> None:
    token = api.signer.click(
        None, "https://shop.example/", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    response = client.get("/r/" + token, follow_redirects=False)
    assert response.status_code == 410
