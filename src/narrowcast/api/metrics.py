"""``GET /metrics``: Prometheus metrics of the API and of the outbox it serves.

Request counts and latencies come from a middleware; the outbox, delivery and
pause figures are read from the store at scrape time (one grouped query each),
so every API process reports the same numbers whichever worker sent the
messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from narrowcast.store import Store
from narrowcast.store.schema import channel_pauses, outbox


class ApiMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "narrowcast_http_requests",
            "HTTP requests served, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "narrowcast_http_request_seconds",
            "HTTP request latency, by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))


class _StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "narrowcast_outbox_messages",
            "Outbox rows by state and channel",
            labels=["state", "channel"],
        )
        paused = GaugeMetricFamily(
            "narrowcast_channel_paused",
            "1 while a channel is paused (bad credentials)",
            labels=["channel"],
        )
        with self.store.connect() as conn:
            rows = conn.execute(
                select(outbox.c.state, outbox.c.channel, func.count()).group_by(
                    outbox.c.state, outbox.c.channel
                )
            ).all()
            for state, channel, count in rows:
                states.add_metric([state, channel or ""], count)
            for (channel,) in conn.execute(select(channel_pauses.c.channel)).all():
                paused.add_metric([channel], 1)
        yield states
        yield paused


class MetricsMiddleware:
    """Counts and times every request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
