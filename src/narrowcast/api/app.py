"""``create_app``: the FastAPI application, from settings and a store.

One module per group of endpoints, each with an ``APIRouter`` named
``router``; this module wires them together with what they share (the
``ApiContext`` on ``app.state``), the body limit, CORS for the shop's origins,
health and metrics. ``narrowcast serve`` runs it under uvicorn and
``narrowcast run --http`` serves it from inside the worker; tests call
``create_app`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from narrowcast.api import dashboard, inbox, ingest, pages, web, webhooks
from narrowcast.api.context import ApiContext
from narrowcast.api.limits import BodyLimit
from narrowcast.api.metrics import ApiMetrics, MetricsMiddleware
from narrowcast.api.settings import ApiSecrets
from narrowcast.config import Settings
from narrowcast.render.links import Signer
from narrowcast.render.settings import load_secret
from narrowcast.store import Store


def create_app(
    settings: Settings,
    store: Store,
    *,
    secrets: ApiSecrets | None = None,
    signer: Signer | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The HTTP API over ``store``.

    ``secrets`` default to the environment variables ``[api]`` names and
    ``signer`` to the link secret of ``[links]``; tests pass their own.
    """
    store.require_current()
    if secrets is None:
        secrets = ApiSecrets.from_env(settings.api)
    if signer is None:
        signer = Signer(load_secret(settings.links).value)
    ctx = ApiContext(settings=settings, store=store, signer=signer, secrets=secrets)
    if clock is not None:
        ctx.clock = clock

    app = FastAPI(
        title="narrowcast",
        summary="Event tracking, in-app inbox, web messages, provider webhooks, unsubscribe.",
        version="1",
    )
    app.state.narrowcast = ctx
    metrics = ApiMetrics(store)
    app.state.metrics = metrics

    for module in (ingest, inbox, web, webhooks, pages, dashboard):
        app.include_router(module.router)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """200 when the store answers; 503 otherwise."""
        try:
            with store.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 — any failure means unhealthy
            from fastapi import HTTPException

            raise HTTPException(503, f"the store does not answer: {type(exc).__name__}") from exc
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost first: the body limit before anything reads a body.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.api.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    return app


def from_environment() -> FastAPI:
    """The app from ``$NARROWCAST_CONFIG`` (or ./config.toml): what each worker process of
    ``narrowcast serve --workers N`` builds for itself."""
    from narrowcast.config import load_settings

    settings = load_settings()
    return create_app(settings, Store(settings.database_url))
