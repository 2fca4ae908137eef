"""Turning cell values into typed values, with reasons a person can act on.

CSV cells are all text; JSONL values are already typed. Each function accepts
both and raises ``ValueError`` with a message naming what was expected.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_TRUE = frozenset({"true", "yes", "y", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "f"})
_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LONG_INT = re.compile(r"-?[0-9]+")  # too long for _INT: as a float it would lose digits


def instant(value: Any, field: str, default_tz: tzinfo | None) -> datetime:
    """An ISO 8601 instant; a naive one is refused unless ``default_tz`` is given."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected an ISO 8601 timestamp text, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{field}: {value!r} is not an ISO 8601 timestamp (e.g. 2025-03-01T18:30:00+01:00)"
        ) from None
    if parsed.tzinfo is None:
        if default_tz is None:
            raise ValueError(
                f"{field}: {value!r} has no UTC offset — add one (e.g. +01:00 or Z) "
                "or pass --tz ZONE to say which time zone naive timestamps are in"
            )
        parsed = parsed.replace(tzinfo=default_tz)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:30+01:00 is before year 1 in UTC
        raise ValueError(f"{field}: {value!r} is out of range once converted to UTC") from None


def number(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {_show(value)}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"{field}: expected a number, got {value!r}") from None
    else:
        raise ValueError(f"{field}: expected a number, got {_show(value)}")
    if not math.isfinite(result):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return result


def integer(value: Any, field: str, low: int | None = None, high: int | None = None) -> int:
    result = number(value, field)
    if not result.is_integer():
        raise ValueError(f"{field}: expected a whole number, got {value!r}")
    whole = int(result)
    if (low is not None and whole < low) or (high is not None and whole > high):
        raise ValueError(f"{field}: expected a whole number from {low} to {high}, got {value!r}")
    return whole


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{field}: expected true or false (or yes/no, 1/0), got {value!r}")


def calendar_date(value: Any, field: str) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise ValueError(f"{field}: expected a date as YYYY-MM-DD, got {_show(value)}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{field}: {value!r} is not a real date ({exc})") from None


def text(value: Any, field: str, max_length: int) -> str:
    if type(value) is str and len(value) <= max_length:  # the common case, fast
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{field}: expected text, got {_show(value)}")
    result = str(value).strip()
    if len(result) > max_length:
        raise ValueError(f"{field}: longer than {max_length} characters")
    return result


def time_zone(value: Any, field: str) -> str:
    name = text(value, field, 64)
    if name not in _zone_names():
        raise ValueError(f"{field}: {name!r} is not an IANA time zone (e.g. Europe/Madrid)")
    return name


def zone(name: str) -> ZoneInfo:
    """The ``--tz`` option: an IANA zone or a ``ValueError`` saying what to pass."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Madrid, UTC)") from None


def infer(cell: str) -> Any:
    """A CSV cell as the JSON value it most likely is.

    Numbers and booleans become typed, but only when the text survives the
    round trip — a product code like ``00123`` stays text.
    """
    if _INT.fullmatch(cell):
        return int(cell)
    if _FLOAT.fullmatch(cell) and not _LONG_INT.fullmatch(cell):
        result = float(cell)
        if math.isfinite(result):  # 1e400 would be stored as null (events) or break JSONB
            return result
    lowered = cell.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return cell


def kind(value: Any) -> str:
    """The catalogue type of a JSON value: number, text, bool, list or object."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "date" if _DATE.fullmatch(value) else "text"
    if isinstance(value, list):
        return "list"
    return "object"


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    return f"{type(value).__name__} {value!r}"[:80]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


def name(value: str, what: str) -> str:
    """A property or attribute name that segment rules can refer to."""
    if not _NAME.fullmatch(value):
        suggestion = re.sub(r"[^A-Za-z0-9_]+", "_", value.strip()).strip("_").lower() or "name"
        if suggestion[0].isdigit():
            suggestion = f"_{suggestion}"
        raise ValueError(
            f"{what} {value!r} is not a usable name — use letters, digits and _ "
            f"(e.g. {suggestion[:100]!r}) so segment rules can refer to it"
        )
    return value
