"""``POST /v1/webhooks/sendgrid``: SendGrid's signed Event Webhook, over a real store.

The tests hold a real ECDSA P-256 key pair and sign the way SendGrid does:
base64 of the DER ECDSA/SHA-256 signature over ``timestamp + raw body``, the
public key given as base64 DER (the PEM body SendGrid's Mail Settings show).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from narrowcast.api.app import create_app
from narrowcast.api.preferences import set_marketing
from narrowcast.api.settings import ApiSecrets, ApiSettings
from narrowcast.config import Settings
from narrowcast.render.links import Signer
from narrowcast.render.settings import LinksSettings
from narrowcast.store import Store
from narrowcast.store.schema import events, outbox
from tests.api.conftest import LINK_SECRET
from tests.api.test_pages import (
    add_customer,
    add_outbox,
    engagement,
    marketing_consent,
    suppressed,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
URL = "/v1/webhooks/sendgrid"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hook:
    client: TestClient
    store: Store
    clock: Clock
    key: ec.EllipticCurvePrivateKey

    def sign(self, body: bytes, at: datetime | None = None) -> dict[str, str]:
        timestamp = str(int((at or self.clock.now).timestamp()))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE: base64.b64encode(signature).decode(),
            TIMESTAMP: timestamp,
            "Content-Type": "application/json",
        }

    def post(self, events: list[dict[str, Any]], **kwargs: Any) -> Any:
        body = orjson.dumps(events)
        return self.client.post(URL, content=body, headers=self.sign(body, **kwargs))


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def app_with(store: Store, key: str | None, clock: Clock, **api: Any) -> TestClient:
    settings = Settings(api=ApiSettings(**api), links=LinksSettings(base_url="http://t"))
    secrets = ApiSecrets(sendgrid_webhook_key=key)
    app = create_app(settings, store, secrets=secrets, signer=Signer(LINK_SECRET), clock=clock)
    return TestClient(app)


@pytest.fixture
def hook(store: Store) -> Iterator[Hook]:
    store.upgrade()
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    with app_with(store, public_key_text(key), clock) as client:
        yield Hook(client, store, clock, key)


def sg_event(event: str, n: int, email: str = "ana@example.com", **fields: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1_740_830_400 + n,
        "event": event,
        "sg_event_id": f"ZGVsaXZlcmVkLTAtMjQ{n:04d}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


# --- signatures ---------------------------------------------------------------------------


def test_signed_events_are_recorded(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com", marketing={"email": True})
    outbox_id = add_outbox(hook.store, "c-1", campaign="spring-sale", variant="b")
    response = hook.post(
        [
            sg_event("processed", 0, outbox_id=str(outbox_id)),
            sg_event("delivered", 1, outbox_id=str(outbox_id), campaign="spring-sale"),
            sg_event("open", 2, outbox_id=str(outbox_id), sg_machine_open=False),
            sg_event("click", 3, outbox_id=str(outbox_id), url="https://shop.example/p"),
            sg_event("deferred", 4, outbox_id=str(outbox_id), response="try later"),
        ]
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 5,
        "recorded": 4,
        "duplicates": 0,
        "uncorrelated": 0,
        "ignored": 1,
        "suppressed": 0,
        "reconciled": 0,
    }
    rows = engagement(hook.store)
    assert [r["type"] for r in rows] == [
        "message_delivered",
        "message_opened",
        "message_clicked",
        "message_deferred",
    ]
    assert rows[0]["event_id"] == "sendgrid:ZGVsaXZlcmVkLTAtMjQ0001"
    assert rows[0]["customer_id"] == "c-1"
    assert rows[0]["ts"] == datetime.fromtimestamp(1_740_830_401, UTC)
    assert rows[0]["properties"] == {
        "outbox_id": outbox_id,
        "campaign": "spring-sale",
        "variant": "b",
        "channel": "email",
        "provider": "sendgrid",
    }
    assert rows[2]["properties"]["url"] == "https://shop.example/p"


def test_no_key_configured_is_503(store: Store) -> None:
    store.upgrade()
    with app_with(store, None, Clock(datetime.now(UTC))) as client:
        response = client.post(URL, content=b"[]")
    assert response.status_code == 503
    assert "sendgrid_webhook_key_env" in response.json()["detail"]


def test_a_key_that_is_not_a_key_is_503(store: Store) -> None:
    store.upgrade()
    with app_with(store, "bm90IGEga2V5", Clock(datetime.now(UTC))) as client:
        response = client.post(URL, content=b"[]", headers={SIGNATURE: "x", TIMESTAMP: "1"})
    assert response.status_code == 503


def test_missing_and_bad_signatures_are_401(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com")
    outbox_id = add_outbox(hook.store, "c-1")
    body = orjson.dumps([sg_event("delivered", 1, outbox_id=str(outbox_id))])
    good = hook.sign(body)
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = Hook(hook.client, hook.store, hook.clock, other_key).sign(body)
    attempts: list[tuple[bytes, dict[str, str]]] = [
        (body, {}),  # unsigned
        (body, {TIMESTAMP: good[TIMESTAMP]}),  # no signature
        (body, {SIGNATURE: good[SIGNATURE]}),  # no timestamp
        (body, forged),  # someone else's key
        (body, {**good, SIGNATURE: "bm90IGEgc2lnbmF0dXJl"}),  # not DER
        (body, {**good, SIGNATURE: "%%%not base64%%%"}),
        (body, {**good, TIMESTAMP: str(int(good[TIMESTAMP]) + 1)}),  # timestamp changed
        (body + b" ", good),  # body changed after signing (even whitespace)
        (body.replace(b"delivered", b"bounce"), good),
        (b"\xff\xfe" + body, good),  # not UTF-8
    ]
    for content, headers in attempts:
        response = hook.client.post(URL, content=content, headers=headers)
        assert response.status_code == 401, (content, headers)
    assert engagement(hook.store) == []


def test_the_signature_covers_the_raw_bytes_not_reserialised_json(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com")
    outbox_id = add_outbox(hook.store, "c-1")
    # SendGrid's own spacing and key order, and a non-ASCII address: verified as sent.
    body = (
        '[{"email":"ñandú@example.com", "event":"delivered","sg_event_id":"e-1",'
        f'"timestamp":1740830400,  "outbox_id":"{outbox_id}"}}]\r\n'
    ).encode()
    response = hook.client.post(URL, content=body, headers=hook.sign(body))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86_400])
def test_stale_or_future_signatures_are_401(hook: Hook, offset: int) -> None:
    body = b"[]"
    headers = hook.sign(body, at=hook.clock.now + timedelta(seconds=offset))
    response = hook.client.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("stale")


def test_max_age_is_a_setting(store: Store) -> None:
    store.upgrade()
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock(datetime.now(UTC))
    with app_with(store, public_key_text(key), clock, webhook_max_age_seconds=30) as client:
        hook = Hook(client, store, clock, key)
        assert hook.post([], at=clock.now - timedelta(seconds=29)).status_code == 200
        assert hook.post([], at=clock.now - timedelta(seconds=31)).status_code == 401


def test_a_replayed_request_records_nothing_new(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com", marketing={"email": True})
    outbox_id = add_outbox(hook.store, "c-1")
    events = [
        sg_event("open", 1, outbox_id=str(outbox_id)),
        sg_event("unsubscribe", 2, outbox_id=str(outbox_id)),
    ]
    body = orjson.dumps(events)
    headers = hook.sign(body)
    first = hook.client.post(URL, content=body, headers=headers)
    assert first.json()["recorded"] == 2
    # The customer opts in again on the preference centre; the replay must not undo it.
    with hook.store.begin() as conn:
        set_marketing(
            conn,
            "c-1",
            {"email": True},
            source="preference centre",
            now=hook.clock.now,
            email="ana@example.com",
        )
    replay = hook.client.post(URL, content=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["recorded"] == 0
    assert replay.json()["duplicates"] == 2
    # The same event again inside a new, differently signed batch: still once.
    again = hook.post([events[0], sg_event("open", 3, outbox_id=str(outbox_id))])
    assert again.json()["recorded"] == 1 and again.json()["duplicates"] == 1
    assert len(engagement(hook.store, "message_opened")) == 2
    assert len(engagement(hook.store, "message_unsubscribed")) == 1
    assert marketing_consent(hook.store, "c-1")["email"] == (True, "preference centre")


def test_a_batch_repeating_one_event_records_it_once(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com")
    outbox_id = add_outbox(hook.store, "c-1")
    event = sg_event("delivered", 1, outbox_id=str(outbox_id))
    response = hook.post([event, event, event])
    assert response.json()["recorded"] == 1 and response.json()["duplicates"] == 2


def test_malformed_bodies_are_400(hook: Hook) -> None:
    for body in (b"", b"{not json", b'{"event": "open"}', b"[1, 2]", b'"x"', b"[[]]"):
        response = hook.client.post(URL, content=body, headers=hook.sign(body))
        assert response.status_code == 400, body


# --- what events do -------------------------------------------------------------------------


def test_machine_opens_are_not_opens(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com")
    outbox_id = add_outbox(hook.store, "c-1")
    hook.post(
        [
            sg_event("open", 1, outbox_id=str(outbox_id), sg_machine_open=True),
            sg_event("open", 2, outbox_id=str(outbox_id), sg_machine_open=False),
            sg_event("open", 3, outbox_id=str(outbox_id)),
        ]
    )
    types = [row["type"] for row in engagement(hook.store)]
    assert types == ["message_machine_opened", "message_opened", "message_opened"]


def test_bounces_complaints_and_unsubscribes_suppress_at_once(hook: Hook) -> None:
    for n, email in enumerate(["hard@x.com", "soft@x.com", "spam@x.com", "un@x.com", "gr@x.com"]):
        add_customer(hook.store, f"c-{n}", email=email, marketing={"email": True})
    ids = [add_outbox(hook.store, f"c-{n}") for n in range(5)]
    response = hook.post(
        [
            sg_event(
                "bounce",
                1,
                "Hard@X.com",
                outbox_id=str(ids[0]),
                type="bounce",
                reason="550 5.1.1 no such user",
                status="5.1.1",
            ),
            sg_event(
                "bounce",
                2,
                "soft@x.com",
                outbox_id=str(ids[1]),
                type="blocked",
                reason="421 try later",
            ),
            sg_event("spamreport", 3, "spam@x.com", outbox_id=str(ids[2])),
            sg_event("unsubscribe", 4, "un@x.com", outbox_id=str(ids[3])),
            sg_event("group_unsubscribe", 5, "gr@x.com", outbox_id=str(ids[4]), asm_group_id=42),
            sg_event("dropped", 6, "hard@x.com", outbox_id=str(ids[0]), reason="Bounced Address"),
        ]
    )
    assert response.status_code == 200
    assert response.json()["suppressed"] == 4
    assert suppressed(hook.store) == {
        "hard@x.com": "hard_bounce",
        "spam@x.com": "spam_complaint",
        "un@x.com": "unsubscribed",
        "gr@x.com": "unsubscribed",
    }
    # Unsubscribes also withdraw the customer's consent; bounces and complaints do not.
    assert marketing_consent(hook.store, "c-3")["email"] == (
        False,
        "sendgrid event webhook (unsubscribe)",
    )
    assert marketing_consent(hook.store, "c-4")["email"][0] is False
    assert marketing_consent(hook.store, "c-0")["email"] == (True, "signup")
    types = [row["type"] for row in engagement(hook.store)]
    assert types == [
        "message_bounced",
        "message_bounced",
        "message_spam_reported",
        "message_unsubscribed",
        "message_unsubscribed",
        "message_dropped",
    ]
    bounce = engagement(hook.store, "message_bounced")[0]["properties"]
    assert bounce["type"] == "bounce" and bounce["reason"] == "550 5.1.1 no such user"


def test_correlation_falls_back_to_message_id_and_email(hook: Hook) -> None:
    # One Mail Send request carried two recipients: one X-Message-Id for both rows.
    add_customer(hook.store, "c-1", email="Ana@Example.com")
    add_customer(hook.store, "c-2", email="bob@example.com")
    first = add_outbox(hook.store, "c-1", provider_id="14c5d75ce93", campaign="spring")
    second = add_outbox(hook.store, "c-2", provider_id="14c5d75ce93", campaign="spring")
    add_outbox(hook.store, "c-2", provider_id="99999999999", campaign="other")
    response = hook.post(
        [
            # No custom args at all (a message sent before they were added).
            sg_event("delivered", 1, "ana@example.com"),
            sg_event("delivered", 2, "bob@example.com"),
            # An outbox id that does not exist (another installation's): the fallback decides.
            sg_event("open", 3, "bob@example.com", outbox_id="123456789"),
            # A garbage outbox id.
            sg_event("click", 4, "bob@example.com", outbox_id="drop table", url="https://x/"),
        ]
    )
    assert response.json()["recorded"] == 4, response.text
    rows = engagement(hook.store)
    assert [(r["customer_id"], r["properties"]["outbox_id"]) for r in rows] == [
        ("c-1", first),
        ("c-2", second),
        ("c-2", second),
        ("c-2", second),
    ]


def test_uncorrelatable_events_are_counted_not_errors(hook: Hook) -> None:
    add_customer(hook.store, "c-1", email="ana@example.com")
    add_outbox(hook.store, "c-1", provider_id="14c5d75ce93")
    response = hook.post(
        [
            sg_event("delivered", 1, "stranger@example.com"),  # right message id, wrong person
            sg_event("open", 2, "ana@example.com", sg_message_id="aaaa.filter"),
            sg_event("bounce", 3, "ghost@example.com", type="bounce", sg_message_id=None),
            {"event": "delivered"},  # nothing to go on at all
        ]
    )
    assert response.status_code == 200
    assert response.json()["uncorrelated"] == 4
    assert response.json()["recorded"] == 0
    assert engagement(hook.store) == []
    # SendGrid knows the address bounced even if we cannot find the message.
    assert suppressed(hook.store) == {"ghost@example.com": "hard_bounce"}


def test_a_message_left_unknown_by_a_crash_becomes_sent_when_sendgrid_reports_it(
    hook: Hook,
) -> None:
    """A worker died with the request in flight: ``unknown``. SendGrid's report settles it."""
    add_customer(hook.store, "c-1", email="ana@example.com")
    add_customer(hook.store, "c-2", email="bob@example.com")
    reported = add_outbox(hook.store, "c-1", campaign="spring")
    silent = add_outbox(hook.store, "c-2", campaign="spring")
    with hook.store.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.id.in_([reported, silent])).values(state="unknown")
        )
    response = hook.post([sg_event("processed", 1, outbox_id=str(reported))])
    assert response.json()["reconciled"] == 1, response.text
    again = hook.post([sg_event("delivered", 2, outbox_id=str(reported))])
    assert again.json()["reconciled"] == 0, "already sent"
    with hook.store.connect() as conn:
        states = dict(conn.execute(select(outbox.c.id, outbox.c.state)).all())
        sent_events = conn.execute(
            select(events.c.customer_id).where(events.c.type == "message_sent")
        ).all()
    assert states == {reported: "sent", silent: "unknown"}
    assert sent_events == [("c-1",)], "one message_sent event, for the reported row only"
