"""The ``sms`` adapter: one ``POST /v1/messages`` per text, to a generic SMS gateway.

Answers: 201 → receipt (the gateway's id); 400 ``invalid_number`` → permanent and
suppressed, other 400s permanent; 401 / 403 → ``ChannelPaused``; 429 and 5xx →
transient (``Retry-After``); network failures → transient, in doubt once the
request may have arrived. Message parts: ``text`` (or ``body``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
from pydantic import BaseModel, ConfigDict, Field

from narrowcast.channels import (
    Channel,
    ChannelContext,
    ChannelPaused,
    Message,
    PermanentError,
    Receipt,
    Result,
    TransientError,
)

MAX_TEXT = 1600  # ten concatenated segments


class SmsSettings(BaseModel):
    """``[channels.providers.sms]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    api_key_env: str = "SMS_API_KEY"
    sender: str = "narrowcast"
    timeout: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    max_batch: int = Field(default=100, ge=1)


class SmsChannel(Channel[SmsSettings]):
    """Text messages through an HTTP SMS gateway."""

    name = "sms"
    channels = frozenset({"sms"})
    settings_model = SmsSettings

    def __init__(self, settings: SmsSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        key = self.context.secret("channels.providers.sms.api_key_env", self.settings.api_key_env)
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.settings.base_url.rstrip("/"),
                timeout=self.settings.timeout,
                headers={"Authorization": f"Bearer {key}"},
                limits=httpx.Limits(max_connections=self.settings.concurrency),
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        if self._client is None:
            raise RuntimeError("SmsChannel.send before open()")
        gate = asyncio.Semaphore(self.settings.concurrency)
        results = list(await asyncio.gather(*(self._text(gate, m) for m in batch)))
        paused = next((r for r in results if isinstance(r, ChannelPaused)), None)
        if paused is not None:
            return [
                r if isinstance(r, Receipt) else ChannelPaused(paused.reason, outbox_id=r.outbox_id)
                for r in results
            ]
        return results

    async def _text(self, gate: asyncio.Semaphore, message: Message) -> Result:
        assert self._client is not None
        text = str(message.parts.get("text") or message.parts.get("body") or "")
        if not text or len(text) > MAX_TEXT:
            return PermanentError(
                f"sms text must be 1–{MAX_TEXT} characters, got {len(text)}",
                outbox_id=message.outbox_id,
            )
        body = {
            "to": message.to,
            "from": self.settings.sender,
            "text": text,
            "reference": str(message.outbox_id),
        }
        async with gate:
            try:
                response = await self._client.post("/v1/messages", json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                return TransientError(f"sms: {type(exc).__name__}", outbox_id=message.outbox_id)
            except httpx.HTTPError as exc:
                return TransientError(
                    f"sms: {type(exc).__name__}", outbox_id=message.outbox_id, in_doubt=True
                )
        return self._classify(response, message.outbox_id)

    def _classify(self, response: httpx.Response, outbox_id: int) -> Result:
        status = response.status_code
        said = f"sms gateway answered {status}: {response.text[:200]}"
        if status in (200, 201, 202):
            return Receipt(outbox_id, self.name, str(response.json().get("id")))
        if status in (401, 403):
            return ChannelPaused(
                f"{said} — check channels.providers.sms.api_key_env", outbox_id=outbox_id
            )
        if status == 429 or status >= 500:
            wait = response.headers.get("retry-after")
            retry_after = float(wait) if wait and wait.isdigit() else None
            return TransientError(said, outbox_id=outbox_id, retry_after=retry_after)
        error = (
            response.json().get("error")
            if "json" in response.headers.get("content-type", "")
            else None
        )
        return PermanentError(said, outbox_id=outbox_id, suppress=error == "invalid_number")
