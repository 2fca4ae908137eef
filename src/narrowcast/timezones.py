"""Customers' time zones by name, each looked up once, with a fallback for bad names.

Planning, sending, learning and the demo all turn a customer's ``timezone``
column into a ``ZoneInfo`` for every row they read; a name that is missing or
that the zone database does not know (an import from an older system) is
taken as the fallback zone — the operator's ``default_timezone`` — rather
than stopping the work.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Zones:
    """``zones(name)`` → the zone, or the fallback's when ``name`` is missing or unknown."""

    def __init__(self, fallback: str = "UTC") -> None:
        self.fallback = _load(fallback) or ZoneInfo("UTC")
        self._found: dict[str | None, ZoneInfo] = {}

    def __call__(self, name: str | None) -> ZoneInfo:
        zone = self._found.get(name)
        if zone is None:
            zone = (_load(name) if name else None) or self.fallback
            self._found[name] = zone
        return zone


def _load(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


__all__ = ["Zones"]
