"""``[channels]`` in config.toml: which provider serves each channel, and their settings.

    [channels.email]
    provider = "sendgrid"              # or ["sendgrid", "smtp"]: failover, in order
    sender = "Shop <news@shop.example>"

    [channels.providers.sendgrid]
    api_key_env = "SENDGRID_API_KEY"   # secrets only through *_env keys

With no ``[channels]`` at all, email, push and webhook messages are written as
files into ``outbox/`` and in-app and web messages go to the store, so the
whole pipeline runs with no credentials. A plugin's channel kind gets its own
table (``[channels.sms] provider = "sms"``) and its provider settings live in
``[channels.providers.NAME]``, checked against the plugin's own model when the
channels are set up.

This module must not import ``narrowcast.config`` (which imports it).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from narrowcast.channels.base import KINDS
from narrowcast.channels.mime import Sender


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_Table):
    """``[channels.KIND]``: the provider, or providers tried in order, serving one channel."""

    provider: str | list[str]

    @field_validator("provider")
    @classmethod
    def _names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not name for name in names):
            raise ValueError("name at least one provider")
        if len(set(names)) != len(names):
            raise ValueError("a provider is named twice")
        return value

    @property
    def providers(self) -> tuple[str, ...]:
        return (self.provider,) if isinstance(self.provider, str) else tuple(self.provider)


class EmailRoute(Route):
    """``[channels.email]``: the provider(s) and who the mail is from."""

    provider: str | list[str] = "file"
    sender: str = "narrowcast <narrowcast@localhost>"
    reply_to: str | None = None

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        Sender.parse(value)
        return value

    def parsed_sender(self) -> Sender:
        return Sender.parse(self.sender, self.reply_to)


class FileSettings(_Table):
    """``[channels.providers.file]``: ``.eml`` / ``.json`` files instead of sending."""

    directory: str = "outbox"


class SendGridSettings(_Table):
    """``[channels.providers.sendgrid]``: v3 Mail Send."""

    api_key_env: str = "SENDGRID_API_KEY"
    base_url: str = "https://api.sendgrid.com"
    timeout: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=100)
    """Requests in flight at once within one batch."""
    max_batch: int = Field(default=1000, ge=1, le=1000)
    sandbox_mode: bool = False
    """SendGrid validates but delivers nothing (mail_settings.sandbox_mode)."""
    asm_group_id: int | None = None
    """Unsubscribe group (ASM) the messages belong to, if you use them."""
    categories: list[str] = []
    """Added to every message's categories (campaign and variant are always there)."""


class SmtpSettings(_Table):
    """``[channels.providers.smtp]``: a self-hosted relay."""

    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 587 with STARTTLS, 465 with implicit TLS, 25 without TLS."""
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    """PEM file of the CA that signed the relay's certificate (a private CA)."""
    verify: bool = True
    timeout: float = Field(default=30.0, gt=0)
    connections: int = Field(default=2, ge=1, le=32)
    """Open connections kept to the relay, each sending one message at a time."""
    max_batch: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _auth(self) -> SmtpSettings:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("set both 'username' and 'password_env', or neither")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "implicit": 465, "none": 25}[self.tls]


class FcmSettings(_Table):
    """``[channels.providers.fcm]``: Firebase Cloud Messaging (HTTP v1) via firebase-admin."""

    credentials_file: str | None = None
    """Service-account JSON file (keep it out of git)."""
    credentials_file_env: str | None = None
    """…or the environment variable that holds its path (GOOGLE_APPLICATION_CREDENTIALS)."""
    project_id: str | None = None
    """Default: the service account's project."""
    base_url: str = "https://fcm.googleapis.com"
    timeout: float = Field(default=10.0, gt=0)
    max_batch: int = Field(default=500, ge=1, le=500)
    dry_run: bool = False
    """FCM validates the messages but delivers nothing (validate_only)."""

    @model_validator(mode="after")
    def _one_source(self) -> FcmSettings:
        if self.credentials_file is not None and self.credentials_file_env is not None:
            raise ValueError("set either 'credentials_file' or 'credentials_file_env', not both")
        return self


class WebhookSettings(_Table):
    """``[channels.providers.webhook]``: JSON POSTed to your endpoint, HMAC-signed."""

    url: str | None = None
    url_env: str | None = None
    secret_env: str = "NARROWCAST_WEBHOOK_SECRET"
    """The shared secret for the ``Narrowcast-Signature`` header."""
    headers: dict[str, str] = {}
    timeout: float = Field(default=10.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=100)
    max_batch: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> WebhookSettings:
        if self.url is not None and self.url_env is not None:
            raise ValueError("set either 'url' or 'url_env', not both")
        return self


class StoredSettings(_Table):
    """``[channels.providers.inapp]`` / ``.web``: messages kept in the store for the HTTP API."""

    max_batch: int = Field(default=500, ge=1)


class ProvidersSettings(_Table):
    """``[channels.providers]``: one table per provider; plugins' tables are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    file: FileSettings = FileSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    smtp: SmtpSettings = SmtpSettings()
    fcm: FcmSettings = FcmSettings()
    webhook: WebhookSettings = WebhookSettings()
    inapp: StoredSettings = StoredSettings()
    web: StoredSettings = StoredSettings()

    def table(self, name: str) -> Any:
        """The settings of provider ``name``: a model for built-ins, a dict for plugins."""
        if name in type(self).model_fields:
            return getattr(self, name)
        return (self.model_extra or {}).get(name, {})

    def plugin_tables(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ChannelsSettings(_Table):
    """``[channels]``: one route per channel kind, and ``[channels.providers]``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    email: EmailRoute = EmailRoute()
    push: Route = Route(provider="file")
    in_app: Route = Route(provider="inapp")
    web: Route = Route(provider="web")
    webhook: Route = Route(provider="file")
    providers: ProvidersSettings = ProvidersSettings()

    @model_validator(mode="before")
    @classmethod
    def _plugin_routes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = [name for name in cls.model_fields]
        checked = dict(data)
        for kind, table in data.items():
            if kind in known:
                continue
            close = difflib.get_close_matches(kind, known, n=1, cutoff=0.75)
            if close:
                raise ValueError(f"unknown channel '{kind}' — did you mean '{close[0]}'?")
            if not isinstance(table, dict):
                raise ValueError(f"'{kind}' must be a table with a 'provider' key")
            try:
                checked[kind] = Route.model_validate(table)
            except ValueError as exc:
                raise ValueError(f"[channels.{kind}]: {exc}") from None
        return checked

    def routes(self) -> dict[str, Route]:
        """Every channel kind with its route: the built-in kinds, then plugin kinds."""
        routes: dict[str, Route] = {kind: getattr(self, kind) for kind in KINDS}
        for kind, route in (self.model_extra or {}).items():
            routes[kind] = route if isinstance(route, Route) else Route.model_validate(route)
        return routes
