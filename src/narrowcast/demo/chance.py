"""Random draws cheap enough to make a few hundred million of them.

A million demo customers take about a hundred million draws. The standard
``randint`` and ``choice`` draw bits until an unbiased value comes up, which
costs ten times a plain ``random()``; here each draw is one ``random()``
call. The bias that leaves (53 bits of float against a range of at most a
few thousand values) is far below anything demo data could show.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate
from random import Random
from typing import Generic, TypeVar

T = TypeVar("T")


class Chance(Random):
    """A ``random.Random`` with fast ``between`` and ``one_of``."""

    def between(self, low: int, high: int) -> int:
        """An integer from ``low`` to ``high``, both included."""
        return low + int(self.random() * (high - low + 1))

    def one_of(self, values: Sequence[T]) -> T:
        return values[int(self.random() * len(values))]


class Weighted(Generic[T]):
    """Values with relative weights (any non-negative numbers, not all zero)."""

    __slots__ = ("_cumulative", "_total", "values")

    def __init__(self, weights: Mapping[T, float]) -> None:
        if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError(f"weights must be non-negative and not all zero: {weights!r}")
        self.values: tuple[T, ...] = tuple(weights)
        # random() * total can round up to total itself; bisect must still land inside.
        self._cumulative = tuple(accumulate(weights.values()))[:-1]
        self._total = sum(weights.values())

    def pick(self, rng: Random) -> T:
        return self.values[bisect(self._cumulative, rng.random() * self._total)]

    def items(self) -> Iterator[tuple[T, float]]:
        previous = 0.0
        for value, cumulative in zip(self.values, (*self._cumulative, self._total), strict=True):
            yield value, cumulative - previous
            previous = cumulative

    def __repr__(self) -> str:
        return f"Weighted({dict(self.items())!r})"
