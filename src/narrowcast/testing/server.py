"""A fake provider: a real HTTP server on 127.0.0.1, in a thread, that can be told to misbehave.

Subclasses implement ``handle`` the way the provider behaves — checking the
auth header, required fields, limits and sizes, and recording what they
accept. Tests then *script* faults, answered in order before ``handle`` runs:

    with FakeSendGrid(api_key="SG.test") as fake:
        fake.script(Reply(429, headers={"X-RateLimit-Reset": "1700000060"}))
        fake.script(Slow(2.0), Reset(), Reply(500))
        ...
        assert fake.accepted[0]["personalizations"][0]["to"] == [...]

A ``Reply`` without a body gets the provider's own error body for that status
(``error_body``), so adapters parse what the real provider would send.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the fake received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(document).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer ``status``; ``body`` ``None`` means the provider's own error body."""

    status: int
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Slow:
    """Wait ``seconds`` before handling the request normally (a client should time out)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Drop the connection with a TCP reset, answering nothing."""


Fault = Reply | Slow | Reset


class FakeServer:
    """Base of the fake providers: serving, scripting faults, recording."""

    #: Paths whose requests never take a scripted fault (e.g. an OAuth token endpoint).
    unscripted: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.requests: list[Request] = []
        """Every request received, faulted or not."""
        self.accepted: list[Any] = []
        """What the provider accepted, in the form the subclass records."""
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- provider behaviour, for subclasses ---------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer ``request`` as the provider would."""
        raise NotImplementedError

    def error_body(self, status: int) -> Response:
        """The provider's answer for a scripted ``Reply(status)`` without a body."""
        return Response.json(status, {"error": f"scripted {status}"})

    # --- scripting ---------------------------------------------------------------------

    def script(self, *faults: Fault, times: int = 1) -> None:
        """Answer the next requests with ``faults``, in order (``times`` rounds of them)."""
        with self._lock:
            for _ in range(times):
                self._faults.extend(faults)

    def always(self, fault: Fault | None) -> None:
        """Answer every request with ``fault`` until ``always(None)``."""
        self._always = fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None
            self.requests.clear()
            self.accepted.clear()

    def _next_fault(self, request: Request) -> Fault | None:
        if any(request.path.startswith(path) for path in self.unscripted):
            return None
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        return self._always

    # --- serving -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _respond(self, request: Request) -> Response | Reset:
        self.requests.append(request)
        fault = self._next_fault(request)
        if isinstance(fault, Reset):
            return fault
        if isinstance(fault, Slow):
            time.sleep(fault.seconds)
        elif isinstance(fault, Reply):
            if fault.body is None:
                base = self.error_body(fault.status)
                return Response(fault.status, base.body, {**base.headers, **fault.headers})
            body = fault.body
            if isinstance(body, dict):
                return Response.json(fault.status, body, fault.headers)
            return Response(fault.status, body, dict(fault.headers))
        return self.handle(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left is what the Slow fault is for; stay quiet.
        pass


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"narrowcast-{type(fake).__name__}"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, self.path, headers, body)
            answer = fake._respond(request)
            if isinstance(answer, Reset):
                self._reset()
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
