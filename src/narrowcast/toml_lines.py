"""Where a key sits in a TOML file, so errors can name the line.

``tomllib`` returns plain dicts with no positions. This reads the text once
and remembers, for every table header and every ``key =`` line, the dotted
path it defines (array-of-tables entries get their index), so that a
validation error about ``segments.vip.where`` or
``scores.lead_score.rules[2].points`` can say ``segments.toml:14``. It
understands the layouts people write by hand — ``[a.b]`` and ``[[a.b]]``
headers, dotted and quoted keys, multi-line strings — which is all an error
message needs; when it cannot tell, it falls back to the enclosing table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from narrowcast.errors import did_you_mean

_HEADER = re.compile(r"^\s*(\[\[?)\s*(?P<path>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_\-\"'. ]+?)\s*=")
_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)')

KeyPath = tuple[str | int, ...]


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(
        next(group for group in match.groups() if group is not None)
        for match in _PART.finditer(dotted)
    )


class TomlLines:
    """Line numbers (1-based) of the tables and keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        arrays: dict[tuple[str, ...], int] = {}
        table: KeyPath = ()
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if in_string in line:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header:
                names = _split(header.group("path"))
                if header.group(1) == "[[":
                    index = arrays.get(names, -1) + 1
                    arrays[names] = index
                    table = (*self._resolve(names, arrays), index)
                else:
                    table = self._resolve(names, arrays)
                self._lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key and not line.lstrip().startswith("#"):
                self._lines.setdefault((*table, *_split(key.group("key"))), number)
                rest = line[key.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) == 1:
                        in_string = quote

    @staticmethod
    def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> KeyPath:
        """``[a.b.c]`` inside the latest ``[[a.b]]`` entry is ``a.b[i].c``."""
        path: list[str | int] = []
        for end in range(1, len(names) + 1):
            path.append(names[end - 1])
            prefix = names[:end]
            if prefix in arrays and end < len(names):
                path.append(arrays[prefix])
        return tuple(path)

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest enclosing table or key; None if unknown."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None


def located_errors(
    path: Path, text: str, exc: ValidationError, model: type[BaseModel]
) -> list[str]:
    """Each pydantic error as ``file:line: 'key.path': what is wrong`` (with did-you-mean).

    A field that accepts one of several forms (``send_time = "now" | "auto" |
    "09:30"``) fails once per form; only the errors our own validators wrote are
    kept for it, since they say what the value should look like.
    """
    lines = TomlLines(text)
    errors = exc.errors()
    by_key: dict[tuple[str | int, ...], list[Any]] = {}
    for error in errors:
        by_key.setdefault(_clean(error["loc"]), []).append(error)
    out = []
    for loc, group in by_key.items():
        ours = [e for e in group if e["type"] == "value_error"]
        for error in ours or group[:1]:
            out.append(_describe(path, lines, loc, error, model))
    return out


def _clean(loc: Any) -> tuple[str | int, ...]:
    """The location without pydantic's union branch tags (``literal[...]``, ``function-after``)."""
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not any(mark in str(part) for mark in ("[", "(", "function-"))
    )


def _describe(
    path: Path, lines: TomlLines, loc: tuple[str | int, ...], error: Any, model: type[BaseModel]
) -> str:
    key = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc)
    key = key.replace(".[", "[")
    at = f"{path}:{lines.line(loc) or 1}"
    if not loc:
        return f"{at}: {str(error['msg']).removeprefix('Value error, ')}"
    if error["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        return f"{at}: unknown key '{key}'{did_you_mean(str(loc[-1]), known)}"
    if error["type"] == "missing":
        return f"{at}: '{key}' is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{at}: '{key}': {message}"


def _known_keys(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at ``path`` (for "did you mean")."""
    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        else:  # a dict key or a list index: step into the container's model
            current = _inner(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner(annotation: Any) -> Any:
    """The model inside ``dict[str, M]``, ``tuple[M, ...]`` or ``M | None``."""
    for arg in reversed(getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation
