"""A webhook receiver that checks narrowcast's signature the way a careful receiver would."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from narrowcast.channels.webhook import (
    OUTBOX_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from narrowcast.testing.server import FakeServer, Request, Response


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook the receiver accepted."""

    outbox_id: int
    idempotency_key: str
    body: Any


class FakeWebhookReceiver(FakeServer):
    """Accepts signed JSON POSTs: 401 for a bad or stale signature, 400 for a body that is
    not JSON, 200 with an ``X-Request-Id`` otherwise."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.secret = secret
        self.clock = clock
        self.accepted: list[Delivery] = []
        self._ids = itertools.count(1)

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"POST only")
        signed = verify_signature(
            self.secret,
            request.body,
            request.headers.get(TIMESTAMP_HEADER.lower()),
            request.headers.get(SIGNATURE_HEADER.lower()),
            now=self.clock(),
        )
        if not signed:
            return Response.json(401, {"error": "bad or missing signature"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Response.json(415, {"error": "send application/json"})
        try:
            body = json.loads(request.body)
        except ValueError:
            return Response.json(400, {"error": "body is not JSON"})
        self.accepted.append(
            Delivery(
                outbox_id=int(request.headers.get(OUTBOX_HEADER.lower(), "0")),
                idempotency_key=request.headers.get("idempotency-key", ""),
                body=body,
            )
        )
        return Response.json(200, {"ok": True}, {"X-Request-Id": f"req-{next(self._ids)}"})
