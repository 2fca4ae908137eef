"""Reading CSV and JSONL files as a stream of rows that know their line number.

Files are read line by line in binary, so memory stays constant whatever the
file size, a byte count drives the progress bar, and a line that is not valid
UTF-8 is reported as that line's error instead of aborting the whole file.
``.gz`` files are decompressed on the fly; ``-`` reads standard input.
"""

from __future__ import annotations

import csv
import gzip
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

from narrowcast.ingest.errors import SourceError

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(slots=True)
class Row:
    """One record of the file: its fields, or why it could not be read."""

    line: int
    fields: dict[str, Any] | None
    error: str | None = None
    text: str | None = None
    """The raw text, kept only for rows that could not be parsed (for the rejects file)."""


@dataclass(frozen=True)
class Source:
    """A file (or stdin) to import, with the format it is read as."""

    path: Path | None
    format: Format

    @property
    def name(self) -> str:
        return "<stdin>" if self.path is None else str(self.path)

    @property
    def size(self) -> int | None:
        """Bytes the progress bar will be told about; ``None`` when unknown."""
        if self.path is None or self.path.suffix.lower() == ".gz":
            # Progress counts decompressed bytes, which the file's size says nothing about.
            return None
        try:
            return self.path.stat().st_size
        except OSError:
            return None


def open_source(location: str | Path, format: str | None = None) -> Source:
    """Resolve a command-line FILE argument (or ``-``) and its format."""
    if str(location) == "-":
        if format is None:
            raise SourceError("reading from stdin (-) needs --format csv or --format jsonl")
        return Source(None, _check_format(format))
    path = Path(location)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    if format is not None:
        return Source(path, _check_format(format))
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    detected = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if detected is None:
        raise SourceError(
            f"{path}: cannot tell the format from the name — use a .csv or .jsonl file "
            "or pass --format csv|jsonl"
        )
    return Source(path, detected)


def read_rows(source: Source, on_bytes: Callable[[int], None] | None = None) -> Iterator[Row]:
    """Yield every non-blank row of ``source`` with its 1-based line number."""
    with _open_binary(source) as fh:
        lines = _count_bytes(fh, on_bytes) if on_bytes else fh
        try:
            if source.format == "jsonl":
                yield from _jsonl_rows(lines)
            else:
                yield from _csv_rows(source, lines)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            # Only gzip raises these: not gzip at all, truncated, or corrupt.
            raise SourceError(f"{source.name}: cannot decompress this gzip file: {exc}") from exc


def _check_format(format: str) -> Format:
    if format not in FORMATS:
        raise SourceError(f"unknown format {format!r}: use csv or jsonl")
    return format


def _open_binary(source: Source) -> IO[bytes]:
    if source.path is None:
        return sys.stdin.buffer
    try:
        if source.path.suffix.lower() == ".gz":
            return cast(IO[bytes], gzip.open(source.path, "rb"))
        return source.path.open("rb")
    except OSError as exc:
        raise SourceError(f"{source.name}: cannot open: {exc.strerror}") from exc


def _count_bytes(lines: IO[bytes], on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    pending = 0
    for line in lines:
        pending += len(line)
        if pending >= 1 << 20:
            on_bytes(pending)
            pending = 0
        yield line
    on_bytes(pending)


def _jsonl_rows(lines: IO[bytes] | Iterator[bytes]) -> Iterator[Row]:
    loads = orjson.loads
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw or raw.isspace():  # unlike strip(), no copy of every line
            continue
        try:
            value = loads(raw)
        except orjson.JSONDecodeError as exc:
            yield Row(number, None, _json_reason(exc), raw.decode("utf-8", "replace").rstrip())
            continue
        if type(value) is not dict:
            got = _JSON_NAMES.get(type(value), type(value).__name__)
            yield Row(number, None, f"expected a JSON object, got {got}", raw.decode().rstrip())
            continue
        yield Row(number, value)


_JSON_NAMES: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "true/false",
    type(None): "null",
}


def _json_reason(exc: orjson.JSONDecodeError) -> str:
    if "utf-8" in exc.msg.lower():
        return "not valid UTF-8 text — save the file as UTF-8"
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def _csv_rows(source: Source, lines: IO[bytes] | Iterator[bytes]) -> Iterator[Row]:
    bad_lines: set[int] = set()

    def decoded() -> Iterator[str]:
        for number, raw in enumerate(lines, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                bad_lines.add(number)
                text = raw.decode("utf-8", "replace")
            yield text

    reader = csv.reader(decoded(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise SourceError(f"{source.name}:1: the header is not valid CSV: {exc}") from exc
    if 1 in bad_lines:
        raise SourceError(
            f"{source.name}:1: the header is not valid UTF-8 — save the file as UTF-8"
        )
    names = [name.strip() for name in header]
    _check_header(source, names)

    previous_end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The row's first line: an unclosed quote only fails at the end of the file.
            yield Row(previous_end + 1, None, f"not valid CSV: {exc}")
            previous_end = reader.line_num
            continue
        start, previous_end = previous_end + 1, reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        text = ",".join(cells)
        if bad_lines and any(n in bad_lines for n in range(start, previous_end + 1)):
            yield Row(start, None, "not valid UTF-8 text — save the file as UTF-8", text)
        elif len(cells) != len(names):
            yield Row(
                start,
                None,
                f"expected {len(names)} columns as in the header, found {len(cells)}",
                text,
            )
        else:
            yield Row(start, {k: v for k, v in zip(names, cells, strict=True) if v != ""})


def _check_header(source: Source, names: list[str]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise SourceError(f"{source.name}:1: column {position} of the header has no name")
        if name in seen:
            raise SourceError(f"{source.name}:1: column '{name}' appears twice in the header")
        seen.add(name)
