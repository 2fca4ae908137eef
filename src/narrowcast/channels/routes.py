"""The adapters config.toml asks for, one per provider, and which channel each serves.

``build_routes`` turns ``[channels]`` into opened-on-demand adapters: it loads
every named provider from the registry, validates its settings table with the
adapter's own model (errors name the file and the key), checks that it serves
the channel it is routed to, and wraps several providers of one channel in a
``Failover``. An adapter named by two channels (``file`` for email and push)
is one instance, opened once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

from pydantic import BaseModel, ValidationError

from narrowcast.channels import registry
from narrowcast.channels.base import Channel, ChannelContext
from narrowcast.channels.errors import ChannelConfigError, PluginError
from narrowcast.channels.failover import Failover
from narrowcast.channels.settings import ChannelsSettings
from narrowcast.errors import did_you_mean

Loader = Callable[[str], type[Channel[Any]]]


class Routes:
    """Channel kind → the adapter (or ``Failover``) that serves it."""

    def __init__(self, kinds: dict[str, Channel[Any]], adapters: dict[str, Channel[Any]]) -> None:
        self.kinds = kinds
        self.adapters = adapters
        self._opened: list[Channel[Any]] = []

    def __getitem__(self, kind: str) -> Channel[Any]:
        try:
            return self.kinds[kind]
        except KeyError:
            raise ChannelConfigError(
                f"no provider serves the '{kind}' channel{did_you_mean(kind, self.kinds)} — "
                f'add [channels.{kind}] provider = "…" to config.toml'
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    async def open(self) -> None:
        try:
            for adapter in self.adapters.values():
                await adapter.open()
                self._opened.append(adapter)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        while self._opened:
            await self._opened.pop().close()

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


def build_routes(
    settings: ChannelsSettings,
    context: ChannelContext,
    *,
    load: Loader = registry.load,
    only: str | None = None,
) -> Routes:
    """The adapters for every configured channel (or just channel ``only``), not yet opened."""
    where = str(context.config_file or "config.toml")
    if context.sender is None:
        context = dataclasses.replace(context, sender=settings.email.parsed_sender())
    routes = settings.routes()
    if only is not None:
        if only not in routes:
            raise ChannelConfigError(
                f"{where}: no [channels.{only}] table{did_you_mean(only, routes)} "
                f"(configured channels: {', '.join(routes)})"
            )
        routes = {only: routes[only]}
    _check_plugin_tables(settings, load, where)

    adapters: dict[str, Channel[Any]] = {}
    kinds: dict[str, Channel[Any]] = {}
    for kind, route in routes.items():
        chosen = []
        for name in route.providers:
            if name not in adapters:
                adapters[name] = _build(name, settings, context, load, where)
            adapter = adapters[name]
            if kind not in adapter.channels:
                raise ChannelConfigError(
                    f"{where}: 'channels.{kind}.provider': '{name}' does not send {kind} "
                    f"messages (it serves {', '.join(sorted(adapter.channels))})"
                )
            chosen.append(adapter)
        kinds[kind] = chosen[0] if len(chosen) == 1 else Failover(chosen, context)
    return Routes(kinds, adapters)


def _build(
    name: str, settings: ChannelsSettings, context: ChannelContext, load: Loader, where: str
) -> Channel[Any]:
    try:
        adapter_class = load(name)
    except PluginError as exc:
        raise ChannelConfigError(f"{where}: channel provider {exc.plugin}: {exc.reason}") from exc
    table = settings.providers.table(name)
    model = adapter_class.settings_model
    if not isinstance(table, model):
        raw = table.model_dump() if isinstance(table, BaseModel) else table
        try:
            table = model.model_validate(raw)
        except ValidationError as exc:
            raise ChannelConfigError(_describe(exc, f"channels.providers.{name}", where)) from exc
    return adapter_class(table, context)


def _check_plugin_tables(settings: ChannelsSettings, load: Loader, where: str) -> None:
    known = list(type(settings.providers).model_fields)
    for name in settings.providers.plugin_tables():
        try:
            load(name)
        except PluginError:
            raise ChannelConfigError(
                f"{where}: [channels.providers.{name}]: no channel adapter called '{name}' is "
                f"installed{did_you_mean(name, known)}"
            ) from None


def _describe(exc: ValidationError, prefix: str, where: str) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join([prefix, *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{key}'")
        else:
            lines.append(f"{where}: '{key}': {error['msg']}")
    return "\n".join(lines)
