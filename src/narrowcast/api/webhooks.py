"""Provider webhooks: ``POST /v1/webhooks/sendgrid``, SendGrid's signed Event Webhook.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features

SendGrid signs ``timestamp + raw body`` with ECDSA P-256 / SHA-256 and sends
the base64 DER signature and the Unix timestamp in
``X-Twilio-Email-Event-Webhook-Signature`` and ``…-Timestamp``. We check it
with the ``sendgrid`` package's ``EventWebhook`` over the body exactly as it
arrived (never re-serialised JSON), against the verification key named by
``[api] sendgrid_webhook_key_env``:

* no key configured → 503 (the endpoint is off, not open);
* a missing or wrong signature → 401;
* a timestamp more than ``[api] webhook_max_age_seconds`` old, or as far in
  the future → 401 "stale" (a captured request cannot be replayed later; one
  replayed within the window records nothing new, as every event is
  deduplicated by its ``sg_event_id``);
* a body that is not a JSON array of objects → 400.

Then ``sendgrid_events.apply`` records the events in one transaction and the
answer is 200 with the counts. Anything else than 2xx makes SendGrid retry
the batch, which is why events we cannot match are counted, not refused.
"""

from __future__ import annotations

import base64
import binascii
import logging
from functools import cache
from typing import Annotated, Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, HTTPException, Request
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]
from sendgrid.helpers.eventwebhook.eventwebhook_header import (  # type: ignore[import-untyped]
    EventWebhookHeader,
)

from narrowcast.api import sendgrid_events
from narrowcast.api.context import ApiContext, context

log = logging.getLogger("narrowcast.api.webhooks")

router = APIRouter(tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    """The body as it arrived: the signature covers these bytes."""
    return await request.body()


@router.post("/v1/webhooks/sendgrid")
def sendgrid(request: Request, body: Annotated[bytes, Depends(raw_body)]) -> dict[str, Any]:
    """Verify a SendGrid Event Webhook request and record its events."""
    ctx = context(request)
    verify_sendgrid(ctx, request, body)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise HTTPException(400, "the body must be a JSON array of event objects")
    with ctx.store.begin() as conn:
        outcome = sendgrid_events.apply(conn, payload, ctx.clock())
    if outcome.uncorrelated:
        log.info(
            "sendgrid webhook: %d of %d events match no message",
            outcome.uncorrelated,
            outcome.received,
        )
    return {
        "received": outcome.received,
        "recorded": outcome.recorded,
        "duplicates": outcome.duplicates,
        "uncorrelated": outcome.uncorrelated,
        "ignored": outcome.ignored,
        "suppressed": outcome.suppressed,
        "reconciled": outcome.reconciled,
    }


def verify_sendgrid(ctx: ApiContext, request: Request, body: bytes) -> None:
    """Raise 503, 401 unless ``body`` carries SendGrid's valid, fresh signature."""
    key = ctx.secrets.sendgrid_webhook_key
    if key is None:
        raise HTTPException(
            503,
            "the SendGrid webhook is off: set [api] sendgrid_webhook_key_env to the variable "
            "holding the verification key from SendGrid's Mail Settings",
        )
    verifier = _verifier(key)
    signature = request.headers.get(EventWebhookHeader.SIGNATURE)
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
    if not signature or not timestamp:
        raise HTTPException(
            401,
            f"unsigned: send {EventWebhookHeader.SIGNATURE} and {EventWebhookHeader.TIMESTAMP}",
        )
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise HTTPException(401, "the signature timestamp is not Unix seconds") from exc
    age = ctx.clock().timestamp() - sent
    if abs(age) > ctx.api.webhook_max_age_seconds:
        raise HTTPException(
            401,
            f"stale: signed {int(age)} s from now, more than "
            f"{ctx.api.webhook_max_age_seconds} s (api.webhook_max_age_seconds)",
        )
    try:
        payload = body.decode("utf-8")
        valid = bool(verifier.verify_signature(payload, signature, timestamp))
    except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise HTTPException(401, "the SendGrid signature does not match this body")


@cache
def _verifier(key: str) -> Any:
    try:
        base64.b64decode(key, validate=True)
        verifier = EventWebhook(key)
        if not isinstance(verifier.public_key, ec.EllipticCurvePublicKey):
            raise ValueError("not an elliptic-curve key")
        return verifier
    except (binascii.Error, ValueError) as exc:
        log.error("the SendGrid webhook verification key cannot be loaded: %s", exc)
        raise HTTPException(
            503,
            "the SendGrid webhook verification key is not a base64 EC public key — copy it "
            "again from SendGrid's Mail Settings → Event Webhook",
        ) from exc
