"""Channel adapters: the ``Channel`` extension point, its registry, and the configured routes."""

from narrowcast.channels.base import (
    KINDS,
    Channel,
    ChannelContext,
    Message,
    NoSettings,
    Receipt,
    Result,
)
from narrowcast.channels.errors import (
    ChannelConfigError,
    ChannelError,
    ChannelPaused,
    DeliveryError,
    PermanentError,
    PluginError,
    TransientError,
)
from narrowcast.channels.failover import Failover
from narrowcast.channels.mime import Sender, build_email
from narrowcast.channels.registry import GROUP, Plugin, discover, load
from narrowcast.channels.routes import Routes, build_routes
from narrowcast.channels.settings import ChannelsSettings

__all__ = [
    "GROUP",
    "KINDS",
    "Channel",
    "ChannelConfigError",
    "ChannelContext",
    "ChannelError",
    "ChannelPaused",
    "ChannelsSettings",
    "DeliveryError",
    "Failover",
    "Message",
    "NoSettings",
    "PermanentError",
    "Plugin",
    "PluginError",
    "Receipt",
    "Result",
    "Routes",
    "Sender",
    "TransientError",
    "build_email",
    "build_routes",
    "discover",
    "load",
]
