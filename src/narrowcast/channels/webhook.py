"""The ``webhook`` adapter: each message's JSON body POSTed to your endpoint, signed.

For CRMs, Slack bridges, a shop's own back office — anything that takes JSON.
Every request carries

* ``Narrowcast-Timestamp``: Unix seconds when it was signed;
* ``Narrowcast-Signature``: ``v1=`` + hex HMAC-SHA256 of ``"{timestamp}." + body``
  with the shared secret (the scheme Stripe and Slack use: the receiver
  recomputes it over the raw body and rejects old timestamps, so a captured
  request cannot be replayed later — see ``verify_signature``);
* ``Narrowcast-Outbox-Id`` and ``Idempotency-Key``: the same for every attempt
  at one message, so a receiver can drop a repeat.

Answers: 2xx → receipt (``X-Request-Id`` as the provider id, if sent);
401 / 403 → the receiver refuses our signature or credentials: ``ChannelPaused``
for the batch (the issue lists every 4xx as permanent; failing the whole queue
on a wrong secret is what the pause exists to prevent); 408 / 425 / 429 / 5xx →
transient, honouring ``Retry-After``; any other 4xx (and 3xx: redirects are not
followed) → permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Sequence

import httpx

from narrowcast.channels.base import Channel, ChannelContext, Message, Receipt, Result, check_batch
from narrowcast.channels.errors import (
    ChannelConfigError,
    ChannelPaused,
    PermanentError,
    TransientError,
)
from narrowcast.channels.http import new_client, retry_after, short, transport_failure
from narrowcast.channels.settings import WebhookSettings

SIGNATURE_HEADER = "Narrowcast-Signature"
TIMESTAMP_HEADER = "Narrowcast-Timestamp"
OUTBOX_HEADER = "Narrowcast-Outbox-Id"
_TRANSIENT = {408, 425, 429}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Narrowcast-Signature`` value for ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


class WebhookChannel(Channel[WebhookSettings]):
    """POST ``parts["body"]`` as JSON to the configured URL, HMAC-signed."""

    name = "webhook"
    channels = frozenset({"webhook"})
    settings_model = WebhookSettings

    def __init__(self, settings: WebhookSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self._client: httpx.AsyncClient | None = None
        self._url = ""
        self._secret = ""

    async def open(self) -> None:
        settings, where = self.settings, "channels.providers.webhook"
        if settings.url_env is not None:
            self._url = self.context.secret(f"{where}.url_env", settings.url_env)
        elif settings.url is not None:
            self._url = settings.url
        else:
            raise ChannelConfigError(
                f"{self.context.config_file or 'config.toml'}: [channels.providers.webhook] "
                "needs 'url' (or 'url_env') — where should webhook messages go?"
            )
        self._secret = self.context.secret(f"{where}.secret_env", settings.secret_env)
        if self._client is None:
            self._client = new_client(
                timeout=settings.timeout, concurrency=settings.concurrency, headers=settings.headers
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        if self._client is None:
            raise RuntimeError("WebhookChannel.send before open()")
        gate = asyncio.Semaphore(self.settings.concurrency)
        paused: list[ChannelPaused] = []
        results = await asyncio.gather(*(self._post(self._client, gate, m, paused) for m in batch))
        if any(isinstance(result, ChannelPaused) for result in results):
            # One refusal means the secret or credentials are wrong for all of them.
            reason = next(r.reason for r in results if isinstance(r, ChannelPaused))
            return [
                r if isinstance(r, Receipt) else ChannelPaused(reason, outbox_id=r.outbox_id)
                for r in results
            ]
        return list(results)

    async def _post(
        self,
        client: httpx.AsyncClient,
        gate: asyncio.Semaphore,
        message: Message,
        paused: list[ChannelPaused],
    ) -> Result:
        try:
            body = json.dumps(
                message.parts["body"], ensure_ascii=False, separators=(",", ":")
            ).encode()
        except (KeyError, TypeError, ValueError) as exc:
            return PermanentError(
                f"webhook body is not JSON: {type(exc).__name__}: {exc}",
                outbox_id=message.outbox_id,
            )
        timestamp = int(self.context.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            OUTBOX_HEADER: str(message.outbox_id),
            "Idempotency-Key": f"narrowcast-{message.outbox_id}",
        }
        async with gate:
            if paused:  # the receiver refused us: do not spend the rest of the batch on it
                return ChannelPaused(paused[0].reason, outbox_id=message.outbox_id)
            try:
                response = await client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return transport_failure(exc, outbox_id=message.outbox_id, provider="webhook")
            result = self._classify(response, message.outbox_id)
            if isinstance(result, ChannelPaused):
                paused.append(result)
            return result

    def _classify(self, response: httpx.Response, outbox_id: int) -> Result:
        status = response.status_code
        if 200 <= status < 300:
            return Receipt(outbox_id, self.name, response.headers.get("x-request-id"))
        said = f"webhook answered {status}: {short(response.text) or response.reason_phrase}"
        if status in (401, 403):
            return ChannelPaused(
                f"{said} — the receiver refuses our signature; check "
                f"channels.providers.webhook.secret_env ({self.settings.secret_env})",
                outbox_id=outbox_id,
            )
        if status in _TRANSIENT or status >= 500:
            wait = retry_after(response.headers, self.context.clock())
            return TransientError(said, outbox_id=outbox_id, retry_after=wait)
        return PermanentError(said, outbox_id=outbox_id)
