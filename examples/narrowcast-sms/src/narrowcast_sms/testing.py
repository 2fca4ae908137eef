"""A fake SMS gateway for the adapter's tests, built on ``narrowcast.testing.FakeServer``."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from narrowcast.testing import FakeServer, Request, Response

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True)
class Text:
    id: str
    to: str
    text: str
    reference: str


class FakeSmsGateway(FakeServer):
    """``POST /v1/messages``: bearer key, E.164 number, 1–1600 characters of text."""

    def __init__(self, api_key: str = "sms-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.accepted: list[Text] = []
        self._ids = itertools.count(1)

    def error_body(self, status: int) -> Response:
        return Response.json(status, {"error": f"http_{status}", "message": "scripted"})

    def handle(self, request: Request) -> Response:
        if (request.method, request.path) != ("POST", "/v1/messages"):
            return Response.json(404, {"error": "not_found"})
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response.json(401, {"error": "unauthorized"})
        body = request.json()
        if not _E164.match(str(body.get("to", ""))):
            return Response.json(400, {"error": "invalid_number", "message": "not E.164"})
        if not 1 <= len(str(body.get("text", ""))) <= 1600 or not body.get("from"):
            return Response.json(400, {"error": "invalid_message"})
        text = Text(f"sms-{next(self._ids)}", body["to"], body["text"], str(body.get("reference")))
        self.accepted.append(text)
        return Response.json(201, {"id": text.id, "status": "queued"})
