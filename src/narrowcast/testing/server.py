"""A fake provider: a real HTTP server on 127.0.0.1, in a thread, that can be told to misbehave.

The server is a small HTTP/1.1 implementation on asyncio streams, running its
own event loop in a daemon thread: one thread serves every connection (a
thread per connection, as ``http.server`` does, collapses to a few dozen
requests a second at 32 concurrent connections), a ``Slow`` fault delays only
its own request, and a ``Reset`` aborts the socket with SO_LINGER 0 so the
client sees a real TCP reset.

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

import asyncio
import json
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

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
        if self._address is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._address
        return f"http://{host}:{port}"

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
                )
            except BaseException as exc:  # noqa: BLE001 — reported by start()
                failure.append(exc)
                ready.set()
                return
            self._address = server.sockets[0].getsockname()[:2]
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None
        self._address = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _respond(self, request: Request) -> Response | Reset:
        self.requests.append(request)
        fault = self._next_fault(request)
        if isinstance(fault, Reset):
            return fault
        if isinstance(fault, Slow):
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, Reply):
            if fault.body is None:
                base = self.error_body(fault.status)
                return Response(fault.status, base.body, {**base.headers, **fault.headers})
            body = fault.body
            if isinstance(body, dict):
                return Response.json(fault.status, body, fault.headers)
            return Response(fault.status, body, dict(fault.headers))
        return self.handle(request)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                answer = await self._respond(request)
                if isinstance(answer, Reset):
                    sock = writer.get_extra_info("socket")
                    # SO_LINGER 0: closing sends RST instead of FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                writer.write(_serialise(answer, type(self).__name__))
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:
            return  # the fake is stopping; the client sees the connection close
        finally:
            if not writer.transport.is_closing():
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


def _serialise(response: Response, server: str) -> bytes:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    head = [f"HTTP/1.1 {response.status} {phrase}", f"Server: narrowcast-{server}"]
    head += [f"{name}: {value}" for name, value in response.headers.items()]
    head.append(f"Content-Length: {len(response.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body
