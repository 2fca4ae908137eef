"""Serving the API with uvicorn: on its own (``narrowcast serve``) or inside the worker.

Inside the worker (``narrowcast run --http``) the daemon owns the signals: the
server must not install its own handlers, and it stops when the daemon's
``stopping`` event is set, finishing the requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import uvicorn
from fastapi import FastAPI


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


_OPTIONS: dict[str, Any] = {
    # Behind a reverse proxy the client address comes from X-Forwarded-For.
    "proxy_headers": True,
    "server_header": False,
    "access_log": False,
}


def config(app: FastAPI, host: str, port: int, *, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, **_OPTIONS)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C, finish the requests in flight, and return.

    (uvicorn's own handling would re-raise the signal after shutting down, so the
    process would end "killed by SIGTERM" instead of exiting 0.)
    """

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await in_process(app, host, port)(stopping)

    asyncio.run(main())


def serve_workers(host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` processes sharing the port (each builds its own app and pool).

    uvicorn's supervisor restarts a worker that dies and stops them all on SIGTERM.
    """
    uvicorn.run(
        "narrowcast.api.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **_OPTIONS,
    )


def in_process(
    app: FastAPI, host: str, port: int
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A coroutine factory for ``Daemon.run(serve=…)``: serve until ``stopping`` is set."""

    async def serve_until(stopping: asyncio.Event) -> None:
        server = _QuietServer(config(app, host, port))

        async def stop_when_asked() -> None:
            await stopping.wait()
            server.should_exit = True

        watcher = asyncio.create_task(stop_when_asked())
        try:
            await server.serve()
        finally:
            watcher.cancel()
        if not stopping.is_set():  # the port was taken, or uvicorn failed to start
            raise SystemExit(f"the HTTP API could not serve on {host}:{port}; see the log above")

    return serve_until
