"""Errors of segment rules.

    NarrowcastError
    ├── RuleError            a rule cannot be parsed, checked or resolved
    │   └── SegmentCycle     segment('a') uses segment('b') which uses segment('a')
    └── ModelFitError        the purchase history cannot support the CLV model (clv.py)

A ``RuleError`` carries where the rule came from (file and line of the rule
in it, when known) and the column of the problem, and prints the rule with a
caret under that column, like a compiler would.
"""

from __future__ import annotations

from narrowcast.errors import NarrowcastError


class RuleError(NarrowcastError):
    """A segment rule is not valid; the message says where and what to do."""

    exit_code = 2

    def __init__(
        self, reason: str, *, rule: str = "", column: int | None = None, origin: str = ""
    ) -> None:
        self.reason = reason
        self.rule = rule
        self.column = column
        self.origin = origin
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.origin or "rule"
        if self.column is not None:
            where += f", column {self.column + 1}"
        text = f"{where}: {self.reason}"
        if self.rule and "\n" not in self.rule:
            text += f"\n    {self.rule}"
            if self.column is not None:
                text += "\n    " + " " * self.column + "^"
        return text


class SegmentCycle(RuleError):
    """Segments refer to each other in a loop."""
