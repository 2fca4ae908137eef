"""What can go wrong when sending, and what the dispatcher should do about it.

Two families. Delivery results are *returned*, one per message, by
``Channel.send`` — they are exceptions so they carry their meaning in their
type (as ``arq.Retry`` does), but an adapter never raises them for a single
message. Operator mistakes are *raised*: they stop the command and say what to
fix, like every ``NarrowcastError``.

    Exception
    └── DeliveryError            one message was not delivered      reason, outbox_id
        ├── TransientError       safe to retry later                retry_after, in_doubt
        │   └── ChannelPaused    the provider refused our
        │                        credentials: pause the channel,
        │                        keep the message queued
        └── PermanentError       never retry                         suppress

    NarrowcastError              (click.ClickException)
    └── ChannelError             channels cannot be set up           exit code 5
        ├── PluginError          an installed adapter plugin is broken; names it
        └── ChannelConfigError   [channels] in config.toml is wrong; names file and key

``TransientError.in_doubt`` is true when the request may have reached the
provider (a read timeout, a connection dropped after the request was written):
a retry could deliver twice, so failover never resends such a message to
another provider, and the dispatcher may treat it as "unknown".

``ChannelPaused`` is a ``TransientError`` on purpose: a bad API key is not the
message's fault, so the message must not be failed (the issue calls this
"permanent and paused"; we keep the message). The dispatcher stops claiming
for that channel until an operator fixes the credentials, and says so loudly.
"""

from __future__ import annotations

from narrowcast.errors import NarrowcastError


class DeliveryError(Exception):
    """One message was not delivered; ``reason`` is for the operator's log."""

    def __init__(self, reason: str, *, outbox_id: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outbox_id = outbox_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, outbox_id={self.outbox_id})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, DeliveryError)
            and vars(other) == vars(self)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.reason, self.outbox_id))


class TransientError(DeliveryError):
    """Try again later: ``retry_after`` seconds if the provider said so."""

    def __init__(
        self,
        reason: str,
        *,
        outbox_id: int,
        retry_after: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(reason, outbox_id=outbox_id)
        self.retry_after = retry_after
        self.in_doubt = in_doubt

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.reason!r}, outbox_id={self.outbox_id}, "
            f"retry_after={self.retry_after}, in_doubt={self.in_doubt})"
        )

    __hash__ = DeliveryError.__hash__


class ChannelPaused(TransientError):
    """The provider refused our credentials: pause the channel, do not fail the message."""


class PermanentError(DeliveryError):
    """Never retry; ``suppress`` when the address or token itself is bad."""

    def __init__(self, reason: str, *, outbox_id: int, suppress: bool = False) -> None:
        super().__init__(reason, outbox_id=outbox_id)
        self.suppress = suppress

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.reason!r}, outbox_id={self.outbox_id}, "
            f"suppress={self.suppress})"
        )

    __hash__ = DeliveryError.__hash__


class ChannelError(NarrowcastError):
    """Channels cannot be set up; the message says what to fix."""

    exit_code = 5


class PluginError(ChannelError):
    """An installed channel plugin is broken (pluggy's ``PluginValidationError``)."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"channel plugin {plugin}: {reason}")
        self.plugin = plugin
        self.reason = reason


class ChannelConfigError(ChannelError):
    """``[channels]`` in config.toml asks for something impossible."""
