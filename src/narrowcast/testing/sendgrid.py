"""A fake SendGrid v3 Mail Send endpoint that checks requests the way SendGrid documents.

https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send and
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors: the bearer
key, 1–1,000 personalizations and at most 1,000 recipients, valid addresses, a
from address, a subject (or one in every personalization), content blocks with
text/plain first, at most 10 categories of at most 255 characters, custom_args
of string values under 10,000 bytes per personalization, no reserved headers,
30 MB per request. Errors come back in SendGrid's ``{"errors": [{"field",
"message", "help"}]}`` form; success is ``202 Accepted`` with ``X-Message-Id``
(``200`` in sandbox mode, which delivers nothing).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from narrowcast.testing.server import FakeServer, Request, Response

_ADDRESS = re.compile(r"^[^@\s\"<>]+@[^@\s\"<>]+\.[^@\s\"<>]+$")
_RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
MAX_BYTES = 30 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Accepted:
    """One Mail Send request SendGrid accepted."""

    message_id: str
    body: dict[str, Any]
    sandbox: bool

    @property
    def outbox_ids(self) -> list[int]:
        return [int(p["custom_args"]["outbox_id"]) for p in self.body["personalizations"]]


def _error(field: str | None, message: str) -> dict[str, Any]:
    help_ = f"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{field}"
    return {"message": message, "field": field, "help": help_ if field else None}


class FakeSendGrid(FakeServer):
    """``POST /v3/mail/send`` as SendGrid answers it."""

    def __init__(self, api_key: str = "SG.fake-key", *, forbidden_keys: tuple[str, ...] = ()):
        super().__init__()
        self.api_key = api_key
        self.forbidden_keys = set(forbidden_keys)
        self.accepted: list[Accepted] = []
        self._serial = itertools.count(1)

    @property
    def outbox_ids(self) -> list[int]:
        """The outbox ids of every accepted (non-sandbox) personalization, in arrival order."""
        return [i for a in self.accepted if not a.sandbox for i in a.outbox_ids]

    def error_body(self, status: int) -> Response:
        if status == 429:
            return Response.json(
                429,
                {"errors": [{"field": None, "message": "too many requests"}]},
                {
                    "X-RateLimit-Limit": "600",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + 60),
                },
            )
        messages = {
            400: "Bad Request",
            401: "The provided authorization grant is invalid, expired, or revoked",
            403: "access forbidden",
            413: "Payload Too Large",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        text = messages.get(status, f"HTTP {status}")
        return Response.json(status, {"errors": [{"field": None, "message": text, "help": None}]})

    def handle(self, request: Request) -> Response:
        if request.path.split("?")[0] != "/v3/mail/send":
            return Response.json(404, {"errors": [{"field": None, "message": "not found"}]})
        if request.method != "POST":
            return Response.json(
                405, {"errors": [{"field": None, "message": "method not allowed"}]}
            )
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key in self.forbidden_keys:
            return self.error_body(403)
        if key != self.api_key:
            return self.error_body(401)
        if len(request.body) > MAX_BYTES:
            return self.error_body(413)
        try:
            body = json.loads(request.body)
        except ValueError:
            return Response.json(400, {"errors": [_error(None, "Bad Request")]})
        if not isinstance(body, dict):
            return Response.json(400, {"errors": [_error(None, "Bad Request")]})
        errors = validate(body)
        if errors:
            return Response.json(400, {"errors": errors})
        message_id = secrets.token_urlsafe(16)[:22]
        sandbox = bool(body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"))
        self.accepted.append(Accepted(message_id, body, sandbox))
        return Response(200 if sandbox else 202, b"", {"X-Message-Id": message_id})


def validate(body: dict[str, Any]) -> list[dict[str, Any]]:
    """SendGrid's documented Mail Send checks; an empty list when the request is valid."""
    errors: list[dict[str, Any]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error("personalizations", "You must have at least one personalization."))
        personalizations = []
    if len(personalizations) > 1000:
        errors.append(
            _error(
                "personalizations",
                "The personalization block is limited to 1000 personalizations per API request. "
                f"You have provided {len(personalizations)} personalizations. Please consider "
                "splitting this into multiple requests and resending your request.",
            )
        )
    recipients = 0
    for i, personalization in enumerate(personalizations):
        errors += _personalization(i, personalization, body)
        for kind in ("to", "cc", "bcc"):
            recipients += len(personalization.get(kind) or [])
    if recipients > 1000:
        errors.append(
            _error(
                "personalizations",
                "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
            )
        )
    sender = body.get("from")
    if not isinstance(sender, dict) or not _ADDRESS.match(str(sender.get("email", ""))):
        errors.append(
            _error(
                "from.email",
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.  e.g. "
                '{"email" : "example@example.com"}',
            )
        )
    has_subject = isinstance(body.get("subject"), str) and body["subject"] != ""
    if not has_subject and not all(p.get("subject") for p in personalizations):
        errors.append(
            _error(
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
            )
        )
    errors += _content(body.get("content"))
    errors += _categories(body.get("categories"))
    errors += _headers("headers", body.get("headers"))
    asm = body.get("asm")
    if asm is not None and not isinstance(asm.get("group_id"), int):
        errors.append(_error("asm.group_id", "The asm group_id must be an integer."))
    return errors


def _personalization(i: int, personalization: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    where = f"personalizations.{i}"
    if not isinstance(personalization, dict):
        return [_error(where, "Each personalization must be an object.")]
    to = personalization.get("to")
    if not isinstance(to, list) or not to:
        errors.append(
            _error(
                f"{where}.to",
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
            )
        )
        to = []
    for j, recipient in enumerate(to):
        if not isinstance(recipient, dict) or not _ADDRESS.match(str(recipient.get("email", ""))):
            errors.append(_error(f"{where}.to.{j}.email", "Does not contain a valid address."))
    args = {**(body.get("custom_args") or {}), **(personalization.get("custom_args") or {})}
    if any(not isinstance(value, str) for value in args.values()):
        errors.append(
            _error(f"{where}.custom_args", "Invalid type. Expected: string, given: non-string.")
        )
    elif len(json.dumps(args).encode()) >= 10_000:
        errors.append(
            _error(
                f"{where}.custom_args",
                "The custom_args total size may not exceed 10,000 bytes per personalization.",
            )
        )
    return errors + _headers(f"{where}.headers", personalization.get("headers"))


def _content(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [
            _error(
                "content",
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
            )
        ]
    errors = []
    for i, block in enumerate(content):
        if (
            not isinstance(block, dict)
            or not isinstance(block.get("value"), str)
            or not block["value"]
        ):
            errors.append(
                _error(
                    f"content.{i}.value",
                    "The content value must be a string at least one character in length.",
                )
            )
    types = [block.get("type") for block in content if isinstance(block, dict)]
    if (
        "text/plain" in types
        and types[0] != "text/plain"
        or ("text/html" in types and types.index("text/html") > 1)
    ):
        errors.append(
            _error(
                "content.0.type",
                "If present, text/plain and text/html may only be provided in order, text/plain "
                "first, followed by text/html.",
            )
        )
    return errors


def _categories(categories: Any) -> list[dict[str, Any]]:
    if categories is None:
        return []
    if not isinstance(categories, list):
        return [_error("categories", "Invalid type. Expected: array.")]
    errors = []
    if len(categories) > 10:
        errors.append(_error("categories", "You may include at most 10 categories per request."))
    if len(set(map(str, categories))) != len(categories):
        errors.append(_error("categories", "Categories must be unique."))
    for i, category in enumerate(categories):
        if not isinstance(category, str) or len(category) > 255:
            errors.append(
                _error(f"categories.{i}", "A category must be a string of at most 255 characters.")
            )
    return errors


def _headers(where: str, headers: Any) -> list[dict[str, Any]]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        return [_error(where, "Invalid type. Expected: object.")]
    errors = []
    for name, value in headers.items():
        if name.lower() in _RESERVED_HEADERS:
            errors.append(_error(where, f"The header {name} is reserved and cannot be set."))
        if not isinstance(value, str):
            errors.append(_error(where, f"The value of header {name} must be a string."))
    return errors
