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

_HEADER = re.compile(r"^\s*(\[\[?)\s*(?P<path>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_\-\"'. ]+?)\s*=")
_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)')

Path = tuple[str | int, ...]


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(
        next(group for group in match.groups() if group is not None)
        for match in _PART.finditer(dotted)
    )


class TomlLines:
    """Line numbers (1-based) of the tables and keys of one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        arrays: dict[tuple[str, ...], int] = {}
        table: Path = ()
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
    def _resolve(names: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> Path:
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
