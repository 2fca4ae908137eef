"""The channel extension point: a rendered ``Message`` in, one result per message out.

An adapter is the smallest thing that can deliver messages over one medium
(Django's mail backends are the model: one method, ``send``). The dispatcher
owns everything around it — claiming, rate limits, retries, recording — so an
adapter can be written, and tested against a fake provider, in an afternoon.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict

from narrowcast.channels.errors import ChannelConfigError, PermanentError, TransientError

if TYPE_CHECKING:
    from narrowcast.channels.mime import Sender
    from narrowcast.store import Store

# The channel kinds narrowcast itself plans for; plugins may serve others.
KINDS = ("email", "push", "in_app", "web", "webhook")


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered message for one recipient.

    ``outbox_id`` is unique and is the correlation and idempotency key: adapters
    put it where the provider echoes it back (SendGrid ``custom_args``, the FCM
    ``collapse_key``) or key their writes on it (in-app and web messages).

    ``parts`` per channel: email ``subject``, ``preheader``?, ``html``, ``text``;
    push ``title``, ``body``, ``image``?, ``link``?, ``data``?; in_app ``title``,
    ``body``, ``cta_label``?, ``cta_url``?, ``image``?; web the in-app parts plus
    ``placement``, ``survey`` and ``targeting``; webhook ``body`` (JSON).
    """

    outbox_id: int
    channel: str
    customer_id: str
    to: str
    parts: Mapping[str, Any]
    campaign: str
    variant: str | None = None
    locale: str | None = None
    unsubscribe_url: str | None = None
    expires_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def missing(self, *names: str) -> list[str]:
        """The named parts that are absent or empty."""
        return [name for name in names if self.parts.get(name) in (None, "")]


@dataclass(frozen=True, slots=True)
class Receipt:
    """The provider accepted the message; ``provider_id`` is its id for it, if it gave one."""

    outbox_id: int
    provider: str
    provider_id: str | None


Result: TypeAlias = Receipt | TransientError | PermanentError


class NoSettings(BaseModel):
    """For adapters that take no ``[channels.providers.NAME]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What an adapter may use besides its own settings; tests build their own."""

    store: Store | None = None
    sender: Sender | None = None
    clock: Callable[[], datetime] = _utcnow
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    config_file: Path | None = None
    """The config file, for error messages; ``None`` when running on defaults."""
    root: Path = field(default_factory=Path.cwd)
    """Relative paths in the settings (outbox folder, credential files) start here."""

    def secret(self, key: str, variable: str) -> str:
        """The value of the environment variable ``variable``, named by config key ``key``."""
        value = self.env.get(variable)
        if not value:
            raise ChannelConfigError(
                f"{self.config_file or 'config.toml'}: '{key}' names the environment variable "
                f"{variable}, which is not set — export {variable}=… before starting narrowcast"
            )
        return value

    def path(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path


S = TypeVar("S", bound=BaseModel)


class Channel(abc.ABC, Generic[S]):
    """Deliver rendered messages over one medium.

    A contract checklist for adapter authors (``narrowcast.testing.ChannelContract``
    checks it against your fake provider):

    * ``name`` equals the entry-point name in ``[project.entry-points."narrowcast.channels"]``;
      ``channels`` names the channel kinds it serves; ``max_batch`` is the most
      messages one ``send`` call accepts; ``settings_model`` is the pydantic model
      of its ``[channels.providers.NAME]`` table (secrets only through ``*_env`` keys,
      read with ``context.secret``).
    * Nothing happens at import time or in ``__init__`` beyond keeping the
      settings: network clients are opened in ``open()`` (or ``async with``) and
      closed in ``close()``.
    * ``send(batch)`` returns one result per message, in the same order: a
      ``Receipt``, or an exception *instance* — ``TransientError`` (safe to
      retry; ``retry_after`` when the provider said when; ``in_doubt`` when the
      request may have reached the provider) or ``PermanentError`` (never retry;
      ``suppress=True`` when the address or token itself is bad). It never
      returns ``False`` and never raises for one message's failure.
    * When the provider refuses the credentials (SendGrid 401/403, FCM
      SenderIdMismatch / ThirdPartyAuth), every message of the batch that was
      neither accepted nor refused for a fault of its own (a malformed address)
      gets a ``ChannelPaused`` (a ``TransientError`` whose reason says what to
      fix), and what of the batch is not yet sent is not sent (firebase-admin
      sends a whole batch at once, so FCM cannot stop): the dispatcher pauses the
      channel and keeps the messages, so a bad key does not burn the queue.
    * Provider exceptions are translated once, at this boundary. Adapters never
      retry or sleep on their own: the dispatcher owns retry policy.
    """

    name: ClassVar[str]
    channels: ClassVar[frozenset[str]]
    settings_model: ClassVar[type[BaseModel]] = NoSettings
    max_batch: int = 100

    def __init__(self, settings: S, context: ChannelContext) -> None:
        self.settings = settings
        self.context = context

    async def open(self) -> None:  # noqa: B027  (optional hook)
        """Open network clients or files; called once before the first ``send``."""

    @abc.abstractmethod
    async def send(self, batch: Sequence[Message]) -> list[Result]:
        """Deliver ``batch`` (at most ``max_batch`` messages); one result per message."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release what ``open`` acquired; safe to call more than once."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} serving {', '.join(sorted(self.channels))}>"


def check_batch(channel: Channel[Any], batch: Sequence[Message]) -> None:
    """A batch larger than ``max_batch`` is the caller's bug, not a delivery failure."""
    if len(batch) > channel.max_batch:
        raise ValueError(
            f"{channel.name}: a batch of {len(batch)} messages exceeds "
            f"max_batch {channel.max_batch}"
        )


def missing_parts(message: Message, *names: str) -> PermanentError | None:
    """A ``PermanentError`` naming the required parts ``message`` lacks, or ``None``."""
    missing = message.missing(*names)
    if not missing:
        return None
    listed = ", ".join(repr(name) for name in missing)
    return PermanentError(
        f"{message.channel} message of campaign {message.campaign!r} has no {listed} part",
        outbox_id=message.outbox_id,
    )
