"""The HTTP API under test: the real app over a real store, in-process or on 127.0.0.1.

``api`` builds the app with known keys (``API_KEY``, ``IDENTITY_SECRET``) and a
link signer, over the parametrised ``store`` (SQLite file and PostgreSQL).
``client`` talks to it in-process (Starlette's TestClient: the real ASGI app,
real routing, middleware and database); ``live_api`` serves the same app with
uvicorn on a free port on 127.0.0.1 for the browser and the load tests.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from narrowcast.api.app import create_app
from narrowcast.api.identity import sign_customer
from narrowcast.api.settings import ApiSecrets, ApiSettings
from narrowcast.config import Settings
from narrowcast.render.links import Links, Signer
from narrowcast.render.settings import LinksSettings
from narrowcast.store import Store

API_KEY = "test-api-key-0123456789"
IDENTITY_SECRET = b"identity-secret-0123456789abcdef"
LINK_SECRET = b"link-secret-0123456789abcdef0123"
SHOP_ORIGIN = "http://shop.test"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
"""Plays SendGrid's Event Webhook signing key; the app is given its public half."""
SENDGRID_PUBLIC_KEY = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@dataclass
class Api:
    app: FastAPI
    store: Store
    settings: Settings
    signer: Signer
    links: Links

    def customer_token(self, customer_id: str, valid_for: timedelta = timedelta(hours=1)) -> str:
        return sign_customer(IDENTITY_SECRET, customer_id, datetime.now(UTC) + valid_for)

    def customer_headers(self, customer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.customer_token(customer_id)}"}


SERVER_HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def make_api(
    store: Store,
    base_url: str = "http://127.0.0.1:8000",
    cors_origins: tuple[str, ...] = (SHOP_ORIGIN,),
    **api: object,
) -> Api:
    settings = Settings(
        api=ApiSettings(cors_origins=list(cors_origins), **api),  # type: ignore[arg-type]
        links=LinksSettings(base_url=base_url),
    )
    signer = Signer(LINK_SECRET)
    secrets = ApiSecrets(
        api_key=API_KEY, identity_secret=IDENTITY_SECRET, sendgrid_webhook_key=SENDGRID_PUBLIC_KEY
    )
    app = create_app(settings, store, secrets=secrets, signer=signer)
    return Api(app, store, settings, signer, Links(signer, base_url))


@pytest.fixture
def api(store: Store) -> Api:
    store.upgrade()
    return make_api(store)


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """An app served by uvicorn on 127.0.0.1 in a thread of the test process."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_api(store: Store, tmp_path: Path) -> Iterator[tuple[Api, LiveServer]]:
    """The API on a real port; its links point at that port."""
    store.upgrade()
    port = free_port()
    made = make_api(store, base_url=f"http://127.0.0.1:{port}")
    with LiveServer(made.app, port) as server:
        yield made, server
