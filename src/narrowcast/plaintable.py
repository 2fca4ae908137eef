"""Plain-text tables for command output: aligned columns, nothing else.

Output that is read in a terminal, pasted into a ticket and diffed in a test
alike, so no box drawing and no colour: text left-aligned, numbers
right-aligned with thousands separators.
"""

from __future__ import annotations

from collections.abc import Sequence

Row = Sequence[object]


def format_table(header: Row, rows: Sequence[Row]) -> str:
    """Columns under ``header``; integers and percentages right-aligned; ``(none)`` if empty."""
    cells = [[str(h) for h in header]] + [
        [f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row]
        for row in rows
    ]
    numeric = [
        i > 0
        and bool(rows)
        and all(_is_number(row[i]) or str(row[i]).endswith("%") for row in rows)
        for i in range(len(header))
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(line, widths, numeric, strict=True)
        ).rstrip()
        for line in cells
    ]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
