"""What every endpoint shares: settings, store, signer, keys, clock — and the auth checks."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import HTTPException, Request

from narrowcast.api.event_writer import Catalogue
from narrowcast.api.identity import IdentityError, verify_customer
from narrowcast.api.settings import ApiSecrets, ApiSettings
from narrowcast.config import Settings
from narrowcast.render.links import Signer
from narrowcast.store import Store


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    signer: Signer
    secrets: ApiSecrets
    clock: Callable[[], datetime] = _utc_now
    event_catalogue: Catalogue = field(default_factory=Catalogue)
    """Event properties this process knows are catalogued (shared by ingest requests)."""

    @property
    def api(self) -> ApiSettings:
        return self.settings.api


def context(request: Request) -> ApiContext:
    """The app's ``ApiContext`` (a FastAPI dependency)."""
    found: ApiContext = request.app.state.narrowcast
    return found


def require_api_key(request: Request) -> ApiContext:
    """Server-to-server endpoints: ``Authorization: Bearer <api key>``."""
    ctx = context(request)
    key = ctx.secrets.api_key
    if key is None:
        raise HTTPException(
            503, "this endpoint is off: set [api] api_key_env in config.toml to enable it"
        )
    given = _bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return ctx


def customer_from(request: Request, token: str | None = None) -> str:
    """The customer a customer token (header, or ``token``) proves; 401 otherwise."""
    ctx = context(request)
    secret = ctx.secrets.identity_secret
    if secret is None:
        raise HTTPException(
            503, "customer tokens are off: set [api] identity_secret_env in config.toml"
        )
    given = token if token is not None else _bearer(request)
    if not given:
        raise HTTPException(
            401,
            "missing customer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return verify_customer(secret, given, ctx.clock())
    except IdentityError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


def require_customer(request: Request) -> str:
    """A FastAPI dependency: the calling customer's id."""
    return customer_from(request)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
