"""Files shaped like a shop's export: rows written as CSV or JSONL, by the file's suffix."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import orjson


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` to ``path`` as ``.csv`` or ``.jsonl`` (optionally ``.gz``).

    CSV gets a header of every key in first-seen order; a missing key or ``None``
    is an empty cell, and ``True``/``False`` are written as ``true``/``false``.
    """
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if suffixes[-1] == ".csv":
        data = _csv(rows).encode()
    else:
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _csv(rows: list[dict[str, Any]]) -> str:
    header = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(_cell(row.get(key)) for key in header)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
