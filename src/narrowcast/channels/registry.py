"""Channel adapters found through the ``narrowcast.channels`` entry-point group.

An adapter package — narrowcast itself, or anybody's — declares

    [project.entry-points."narrowcast.channels"]
    sms = "narrowcast_sms.channel:SmsChannel"

and is checked when it is loaded (like pluggy's ``PluginValidationError``): a
plugin that cannot be imported, is not a ``Channel``, or whose ``name`` is not
its entry-point name is refused with an error that names it, instead of failing
half-way through a send.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from narrowcast.channels.base import Channel
from narrowcast.channels.errors import PluginError
from narrowcast.errors import did_you_mean

GROUP = "narrowcast.channels"


@dataclass(frozen=True, slots=True)
class Plugin:
    """One installed entry point, loaded and checked — or the reason it was refused."""

    name: str
    target: str
    """``module:Class`` as the entry point declares it."""
    distribution: str | None
    """``package version`` that installed it."""
    adapter: type[Channel[Any]] | None
    error: PluginError | None


def discover(points: Iterable[EntryPoint] | None = None) -> list[Plugin]:
    """Every installed channel plugin, sorted by name; broken ones carry their error."""
    found = []
    for point in entry_points(group=GROUP) if points is None else points:
        dist = point.dist
        distribution = f"{dist.name} {dist.version}" if dist is not None else None
        try:
            adapter: type[Channel[Any]] | None = _load(point)
            error = None
        except PluginError as exc:
            adapter, error = None, exc
        found.append(Plugin(point.name, point.value, distribution, adapter, error))
    return sorted(found, key=lambda plugin: plugin.name)


def load(name: str, points: Iterable[EntryPoint] | None = None) -> type[Channel[Any]]:
    """The adapter class registered as ``name``; ``PluginError`` if none or broken."""
    points = list(entry_points(group=GROUP) if points is None else points)
    for point in points:
        if point.name == name:
            return _load(point)
    names = sorted(point.name for point in points)
    raise PluginError(
        f"'{name}'",
        f"no such channel adapter is installed{did_you_mean(name, names)} "
        f"(installed: {', '.join(names) or 'none'})",
    )


def _load(point: EntryPoint) -> type[Channel[Any]]:
    label = f"'{point.name}' ({point.value})"
    try:
        obj = point.load()
    except Exception as exc:  # noqa: BLE001 — any import failure is the plugin's fault
        raise PluginError(label, f"cannot be imported: {type(exc).__name__}: {exc}") from exc
    return validate(point.name, obj, label=label)


def validate(name: str, obj: object, *, label: str | None = None) -> type[Channel[Any]]:
    """``obj`` if it honours the ``Channel`` contract under entry-point name ``name``."""
    label = label or f"'{name}'"

    def refuse(reason: str) -> PluginError:
        return PluginError(label, reason)

    if not (isinstance(obj, type) and issubclass(obj, Channel)):
        raise refuse(f"{obj!r} is not a subclass of narrowcast.channels.Channel")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise refuse(f"{obj.__name__} does not implement {missing}")
    declared = getattr(obj, "name", None)
    if declared != name:
        raise refuse(f"{obj.__name__}.name is {declared!r}; it must equal the entry-point name")
    kinds = getattr(obj, "channels", None)
    if (
        not isinstance(kinds, frozenset | set)
        or not kinds
        or not all(isinstance(kind, str) and kind for kind in kinds)
    ):
        raise refuse(f"{obj.__name__}.channels must be a non-empty set of channel names")
    if not isinstance(obj.max_batch, int) or obj.max_batch < 1:
        raise refuse(f"{obj.__name__}.max_batch must be a positive integer")
    for method in ("open", "send", "close"):
        if not inspect.iscoroutinefunction(getattr(obj, method)):
            raise refuse(f"{obj.__name__}.{method} must be 'async def'")
    model = getattr(obj, "settings_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise refuse(f"{obj.__name__}.settings_model must be a pydantic BaseModel subclass")
    return obj
