"""Errors of the importers.

    NarrowcastError
    └── ImportFailed            nothing from the file was stored
        └── SourceError         the file itself cannot be read as CSV/JSONL

``RowError`` is not an exception: it is one bad row (``FILE:LINE: reason``),
collected while the import goes on so that every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from narrowcast.errors import NarrowcastError


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row: where it is and what is wrong with it."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class ImportFailed(NarrowcastError):
    """The import stored nothing; the message lists the rows to fix."""

    exit_code = 4

    def __init__(self, message: str, errors: tuple[RowError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class SourceError(ImportFailed):
    """The file cannot be opened or is not the format it claims to be."""
