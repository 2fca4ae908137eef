"""``[api]`` in config.toml: the HTTP API's address, keys, origins and limits.

Keys never live in the file: each ``*_env`` setting names the environment
variable that holds the value, read when the API starts. A key that is not
configured switches its endpoints off with a clear 503 instead of leaving them
open — an API without an ingest key accepts no events.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from narrowcast.errors import NarrowcastError


class ApiSettings(BaseModel):
    """``[api]``: where ``narrowcast serve`` listens and what it trusts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key_env: str | None = None
    """Variable holding the server key for /v1/events, /v1/customers and /v1/push-tokens."""
    identity_secret_env: str | None = None
    """Variable holding the secret the shop's backend signs customer tokens with (inbox, web)."""
    sendgrid_webhook_key_env: str | None = None
    """Variable holding SendGrid's Event Webhook verification key (base64, from the SendGrid UI)."""
    cors_origins: list[str] = []
    """Shop origins allowed to call the browser endpoints, e.g. ``["https://shop.example"]``."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Requests with a larger body are refused with 413 before they are read."""
    max_batch: int = Field(1000, ge=1, le=10_000)
    """Most events or customers in one request."""
    web_max_views: int = Field(3, ge=1)
    """Most times one visitor is shown a web message (a dismiss or a click ends it sooner)."""
    webhook_max_age_seconds: int = Field(300, ge=1)
    """Signed webhooks older than this are refused (replay protection)."""


class ApiConfigError(NarrowcastError):
    """An ``[api]`` key names an environment variable that is not set."""

    exit_code = 2


@dataclass(frozen=True)
class ApiSecrets:
    """The values behind the ``*_env`` settings; ``None`` where not configured."""

    api_key: str | None = None
    identity_secret: bytes | None = None
    sendgrid_webhook_key: str | None = None

    @classmethod
    def from_env(cls, settings: ApiSettings, env: Mapping[str, str] | None = None) -> ApiSecrets:
        env = os.environ if env is None else env

        def read(key: str, name: str | None) -> str | None:
            if name is None:
                return None
            value = env.get(name, "")
            if not value:
                raise ApiConfigError(
                    f"'api.{key}' names the environment variable {name}, which is not set — "
                    f"export {name}=… before starting narrowcast serve"
                )
            return value

        identity = read("identity_secret_env", settings.identity_secret_env)
        if identity is not None and len(identity) < 16:
            raise ApiConfigError(
                f"the identity secret in {settings.identity_secret_env} has {len(identity)} "
                "characters; use at least 16 random characters"
            )
        return cls(
            api_key=read("api_key_env", settings.api_key_env),
            identity_secret=None if identity is None else identity.encode(),
            sendgrid_webhook_key=read(
                "sendgrid_webhook_key_env", settings.sendgrid_webhook_key_env
            ),
        )
