"""The ``sendgrid`` adapter: email through SendGrid's v3 Mail Send API.

https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send

We speak HTTP ourselves over one pooled ``httpx.AsyncClient`` instead of using
the ``sendgrid`` package's client, which is synchronous, opens a connection per
request and has no default timeout.

Each message becomes a personalization carrying its own recipient, its
``List-Unsubscribe`` headers (RFC 8058 one-click) and ``custom_args`` with the
outbox id — SendGrid's Event Webhook echoes ``custom_args`` back, which is how
delivered / open / bounce events find their outbox row. Messages of a batch
whose rendered content is identical share one request (up to the documented
1,000 personalizations and 30 MB); personalised content means one request per
message, several in flight at once (``concurrency``).

Answers, per request, for every message in it:

* 202 (200 in sandbox mode) → receipt with ``X-Message-Id``;
* 400 → permanent, with SendGrid's field errors; an error that names one
  personalization fails that message only (suppressed if its address is
  invalid) and the others, never sent, come back transient;
* 401 / 403 → the key is wrong or lacks the Mail Send scope: ``ChannelPaused``
  for the batch, and the batch's remaining requests are not sent;
* 413 → permanent (over 30 MB); 429 → transient, retry when
  ``X-RateLimit-Reset`` says; 5xx, timeouts, connection errors → transient.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import httpx
import orjson

from narrowcast.channels.base import (
    Channel,
    ChannelContext,
    Message,
    Receipt,
    Result,
    check_batch,
    missing_parts,
)
from narrowcast.channels.errors import (
    ChannelConfigError,
    ChannelPaused,
    PermanentError,
    TransientError,
)
from narrowcast.channels.http import new_client, retry_after, short, transport_failure
from narrowcast.channels.mime import Sender, html_with_preheader
from narrowcast.channels.settings import SendGridSettings

MAX_PERSONALIZATIONS = 1000
MAX_REQUEST_BYTES = 30 * 1024 * 1024
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)(\.(to|cc|bcc)\.\d+\.email)?")


@dataclass(slots=True)
class _Request:
    """One Mail Send request: shared content, and the messages it carries."""

    shared: dict[str, Any]
    messages: list[tuple[int, Message, dict[str, Any]]] = field(default_factory=list)
    size: int = 0


class SendGridChannel(Channel[SendGridSettings]):
    """Email through SendGrid v3 ``POST /v3/mail/send``."""

    name = "sendgrid"
    channels = frozenset({"email"})
    settings_model = SendGridSettings

    def __init__(self, settings: SendGridSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self._client: httpx.AsyncClient | None = None

    @property
    def sender(self) -> Sender:
        if self.context.sender is None:
            raise ChannelConfigError("sendgrid needs a sender: set [channels.email] sender")
        return self.context.sender

    async def open(self) -> None:
        key = self.context.secret(
            "channels.providers.sendgrid.api_key_env", self.settings.api_key_env
        )
        if self._client is None:
            self._client = new_client(
                base_url=self.settings.base_url.rstrip("/"),
                timeout=self.settings.timeout,
                concurrency=self.settings.concurrency,
                headers={"Authorization": f"Bearer {key}"},
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        if self._client is None:
            raise RuntimeError("SendGridChannel.send before open()")
        results: list[Result | None] = [None] * len(batch)
        requests = self._requests(batch, results)
        gate = asyncio.Semaphore(self.settings.concurrency)
        paused: list[ChannelPaused] = []

        async def post(request: _Request) -> None:
            async with gate:
                if paused:  # a refused key: do not spend the rest of the batch on it
                    for index, message, _ in request.messages:
                        results[index] = ChannelPaused(
                            paused[0].reason, outbox_id=message.outbox_id
                        )
                    return
                for index, result in await self._post(request):
                    results[index] = result
                    if isinstance(result, ChannelPaused) and not paused:
                        paused.append(result)

        await asyncio.gather(*(post(request) for request in requests))
        if paused:
            reason = paused[0].reason
            results = [
                r
                if isinstance(r, Receipt | PermanentError)
                else ChannelPaused(reason, outbox_id=m.outbox_id)
                for r, m in zip(results, batch, strict=True)
            ]
        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    # --- building requests -------------------------------------------------------------

    def _requests(self, batch: Sequence[Message], results: list[Result | None]) -> list[_Request]:
        groups: dict[bytes, list[_Request]] = {}
        for index, message in enumerate(batch):
            try:
                shared, personalization = self._parts(message)
            except ValueError as exc:
                results[index] = PermanentError(
                    f"sendgrid: {exc}",
                    outbox_id=message.outbox_id,
                    suppress="address" in str(exc),
                )
                continue
            key = orjson.dumps(shared, option=orjson.OPT_SORT_KEYS)
            size = len(orjson.dumps(personalization)) + 1
            if len(key) + size > MAX_REQUEST_BYTES:
                results[index] = PermanentError(
                    f"sendgrid: the message is {len(key) + size:,} bytes; Mail Send takes at most "
                    f"{MAX_REQUEST_BYTES:,}",
                    outbox_id=message.outbox_id,
                )
                continue
            chunks = groups.setdefault(key, [])
            if (
                not chunks
                or len(chunks[-1].messages) >= MAX_PERSONALIZATIONS
                or len(key) + chunks[-1].size + size > MAX_REQUEST_BYTES
            ):
                chunks.append(_Request(shared))
            chunks[-1].messages.append((index, message, personalization))
            chunks[-1].size += size
        return [request for chunks in groups.values() for request in chunks]

    def _parts(self, message: Message) -> tuple[dict[str, Any], dict[str, Any]]:
        missing = missing_parts(message, "subject", "html", "text")
        if missing is not None:
            raise ValueError(missing.reason)
        name, address = _address(message.to)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"{message.to!r} is not a valid address")
        subject = str(message.parts["subject"])
        if "\n" in subject or "\r" in subject:
            raise ValueError("the subject contains a line break")
        preheader = message.parts.get("preheader")
        html = html_with_preheader(
            str(message.parts["html"]), str(preheader) if preheader else None
        )
        sender = self.sender
        shared: dict[str, Any] = {
            "from": {"email": sender.address, **({"name": sender.name} if sender.name else {})},
            "subject": subject,
            "content": [
                {"type": "text/plain", "value": str(message.parts["text"])},
                {"type": "text/html", "value": html},
            ],
            "categories": self._categories(message),
        }
        if sender.reply_to:
            shared["reply_to"] = {"email": sender.reply_to}
        if self.settings.asm_group_id is not None:
            shared["asm"] = {"group_id": self.settings.asm_group_id}
        if self.settings.sandbox_mode:
            shared["mail_settings"] = {"sandbox_mode": {"enable": True}}

        custom_args = {
            **message.metadata,
            "outbox_id": str(message.outbox_id),
            "campaign": message.campaign,
            **({"variant": message.variant} if message.variant else {}),
        }
        args_size = len(orjson.dumps(custom_args))
        if args_size >= MAX_CUSTOM_ARGS_BYTES:
            raise ValueError(
                f"custom_args (outbox id, campaign and metadata) are {args_size:,} bytes; "
                f"SendGrid takes less than {MAX_CUSTOM_ARGS_BYTES:,}"
            )
        personalization: dict[str, Any] = {
            "to": [{"email": address, **({"name": name} if name else {})}],
            "custom_args": custom_args,
        }
        if message.unsubscribe_url:
            personalization["headers"] = {
                "List-Unsubscribe": f"<{message.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return shared, personalization

    def _categories(self, message: Message) -> list[str]:
        wanted = [message.campaign]
        if message.variant:
            wanted.append(f"{message.campaign}:{message.variant}")
        wanted.extend(self.settings.categories)
        unique = list(dict.fromkeys(c[:MAX_CATEGORY_LENGTH] for c in wanted if c))
        return unique[:MAX_CATEGORIES]

    # --- sending and reading the answer --------------------------------------------------

    async def _post(self, request: _Request) -> list[tuple[int, Result]]:
        assert self._client is not None
        body = {
            **request.shared,
            "personalizations": [personalization for _, _, personalization in request.messages],
        }
        try:
            response = await self._client.post(
                "/v3/mail/send",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            return [
                (index, transport_failure(exc, outbox_id=message.outbox_id, provider="sendgrid"))
                for index, message, _ in request.messages
            ]
        return self._classify(response, request)

    def _classify(self, response: httpx.Response, request: _Request) -> list[tuple[int, Result]]:
        status = response.status_code
        messages = [(index, message) for index, message, _ in request.messages]
        if status in (200, 202):
            provider_id = response.headers.get("x-message-id")
            return [(i, Receipt(m.outbox_id, self.name, provider_id)) for i, m in messages]
        errors = _errors(response)
        detail = errors or short(response.text) or response.reason_phrase
        said = f"sendgrid answered {status}: {detail}"
        if status in (401, 403):
            reason = (
                f"{said} — the API key in {self.settings.api_key_env} is invalid, revoked or "
                "lacks the Mail Send permission; fix it, then resume the channel"
            )
            return [(i, ChannelPaused(reason, outbox_id=m.outbox_id)) for i, m in messages]
        if status == 400:
            return self._bad_request(response, messages, said)
        if status == 429:
            wait = _rate_limit_reset(response.headers, self.context.clock())
            return [
                (i, TransientError(said, outbox_id=m.outbox_id, retry_after=wait))
                for i, m in messages
            ]
        if status >= 500 or status == 408:
            wait = retry_after(response.headers, self.context.clock())
            return [
                (i, TransientError(said, outbox_id=m.outbox_id, retry_after=wait))
                for i, m in messages
            ]
        return [(i, PermanentError(said, outbox_id=m.outbox_id)) for i, m in messages]

    def _bad_request(
        self, response: httpx.Response, messages: list[tuple[int, Message]], said: str
    ) -> list[tuple[int, Result]]:
        blamed: dict[int, bool] = {}  # personalization index → its address is invalid
        for error in _error_list(response):
            match = _PERSONALIZATION_FIELD.match(str(error.get("field") or ""))
            if match is None:
                blamed.clear()
                break
            position = int(match.group(1))
            blamed[position] = blamed.get(position, False) or match.group(2) is not None
        if not blamed or any(position >= len(messages) for position in blamed):
            return [(i, PermanentError(said, outbox_id=m.outbox_id)) for i, m in messages]
        results: list[tuple[int, Result]] = []
        for position, (index, message) in enumerate(messages):
            if position in blamed:
                results.append(
                    (
                        index,
                        PermanentError(
                            said, outbox_id=message.outbox_id, suppress=blamed[position]
                        ),
                    )
                )
            else:
                results.append(
                    (
                        index,
                        TransientError(
                            "sendgrid refused the request for another recipient in it; not sent",
                            outbox_id=message.outbox_id,
                        ),
                    )
                )
        return results


def _error_list(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        document = response.json()
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _errors(response: httpx.Response) -> str:
    parts = []
    for error in _error_list(response):
        where = error.get("field")
        parts.append(f"{where}: {error.get('message')}" if where else str(error.get("message")))
    return short("; ".join(parts))


def _rate_limit_reset(headers: httpx.Headers, now: datetime) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (a Unix time), else ``Retry-After``."""
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, int(reset) - now.timestamp())
    return retry_after(headers, now)


_PLAIN = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _address(to: str) -> tuple[str, str]:
    """(display name, address); a plain address skips the RFC 5322 parser.

    ``email.utils.parseaddr`` costs about 0.3 ms an address — most of what
    building a large batch costs — and nearly every recipient is a plain
    ``local@domain``.
    """
    if _PLAIN.fullmatch(to):
        return "", to
    return parseaddr(to)
