"""What the messages changed: treated against control, by assignment, with 95 % intervals.

A campaign's uplift is measured by intent to treat: everyone *assigned* a
message counts as treated whether it was sent or not, and is compared with
the customers assigned to a control group (the campaign's holdout or the
global control group). Comparing only the messages actually sent would
compare people the channel could reach with people chosen at random, and
call the difference uplift.

* ``rate_difference`` — difference of two conversion rates with Newcombe's
  hybrid score interval (method 10 of R. G. Newcombe, "Interval estimation
  for the difference between independent proportions: comparison of eleven
  methods", Statistics in Medicine 17 (1998) 873–890). Unlike the Wald
  interval it stays inside [-1, 1] and keeps its coverage for rates of a few
  per cent and for zero counts, which is what conversion rates look like.
* ``mean_difference`` — difference of two means (revenue per customer) with
  Welch's interval: unequal variances, Welch–Satterthwaite degrees of freedom.
  Revenue is skewed and mostly zero; with hundreds of customers per group the
  t interval is fine, with a handful it is only indicative.
* ``sample_ratio`` — the sample-ratio-mismatch check: a chi-square goodness
  of fit of the observed group sizes against the configured shares. A
  mismatch (p < 0.001) means the assignment or the logging is broken, and no
  difference between the groups can be trusted until it is explained.
* ``ipw_rate`` — the conversion rate of one A/B arm when the arm was drawn
  with a probability that changed over time (adaptive allocation), weighted
  by the inverse of the logged probability (self-normalised, Hájek).

Everything here is plain arithmetic on counts and sums, so the report can let
the database aggregate and pass the totals in. Nothing divides by zero: an
estimate that has no data is None, and so is an interval that cannot be
computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm  # type: ignore[import-untyped, unused-ignore]
from scipy.stats import t as student_t  # type: ignore[import-untyped, unused-ignore]

CONFIDENCE = 0.95
Z95: float = float(norm.ppf(0.5 + CONFIDENCE / 2))
"""1.959964…: the standard normal quantile of a two-sided 95 % interval."""
MISMATCH_P = 0.001
"""A sample ratio with a p-value below this is a mismatch (the usual, strict threshold:
the check runs on every report, so it must rarely cry wolf)."""


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True, slots=True)
class Difference:
    """Treated minus control, and its 95 % interval; None where there is no data."""

    estimate: float | None
    interval: Interval | None
    method: str
    """How the interval was computed, for the report to say."""


def wilson(successes: int, n: int, z: float = Z95) -> Interval | None:
    """Wilson's score interval for ``successes`` out of ``n``; None when ``n`` is 0."""
    _check_counts(successes, n)
    if n == 0:
        return None
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return Interval(max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale))


def rate_difference(
    treated_converted: int, treated: int, control_converted: int, control: int
) -> Difference:
    """Conversion rate of the treated minus that of the control, with Newcombe's interval.

    Newcombe's hybrid score interval (method 10, no continuity correction) puts
    the two groups' Wilson intervals together::

        low  = d - sqrt((p1 - l1)² + (u2 - p2)²)
        high = d + sqrt((u1 - p1)² + (p2 - l2)²)

    The estimate is None when either group is empty, and so is the interval.
    """
    method = "Newcombe hybrid score"
    if treated == 0 or control == 0:
        _check_counts(treated_converted, treated)
        _check_counts(control_converted, control)
        return Difference(None, None, method)
    p1, p2 = treated_converted / treated, control_converted / control
    w1, w2 = wilson(treated_converted, treated), wilson(control_converted, control)
    assert w1 is not None and w2 is not None  # both groups have rows
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Difference(d, Interval(max(-1.0, low), min(1.0, high)), method)


@dataclass(frozen=True, slots=True)
class Moments:
    """Size, sum and sum of squares of one group's values (e.g. revenue per customer).

    What a database can add up in one pass; ``Moments.of(values)`` for values at hand.
    """

    n: int
    total: float
    squares: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        array = np.asarray(list(values), dtype=np.float64)
        return cls(int(array.size), float(array.sum()), float(np.square(array).sum()))

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1 in the denominator); None below two values."""
        if self.n < 2:
            return None
        spread = self.squares - self.total * self.total / self.n
        # From sums, equal values leave a rounding error of either sign instead of 0.
        if spread <= 1e-10 * self.squares:
            return 0.0
        return spread / (self.n - 1)


def mean_difference(treated: Moments, control: Moments) -> Difference:
    """Mean of the treated minus that of the control, with Welch's 95 % interval.

    ``se² = s1²/n1 + s2²/n2`` and the t quantile at the Welch–Satterthwaite
    degrees of freedom. The estimate needs one value per group; the interval
    needs two per group and some spread: when both groups are constant (e.g.
    nobody bought anything) there is no spread to build it from and it is None.
    """
    method = "Welch"
    m1, m2 = treated.mean, control.mean
    if m1 is None or m2 is None:
        return Difference(None, None, method)
    d = m1 - m2
    v1, v2 = treated.variance, control.variance
    if v1 is None or v2 is None:
        return Difference(d, None, method)
    a, b = v1 / treated.n, v2 / control.n
    se2 = a + b
    if se2 <= 0:
        return Difference(d, None, method)
    df = se2 * se2 / (a * a / (treated.n - 1) + b * b / (control.n - 1))
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(se2)
    return Difference(d, Interval(d - half, d + half), method)


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """Observed group sizes against the configured shares."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    """The sizes the shares predict for the observed total."""
    statistic: float | None
    p_value: float | None
    """None when there is nothing to test (no rows, or only one group with a share)."""

    @property
    def mismatch(self) -> bool:
        return self.p_value is not None and self.p_value < MISMATCH_P


def sample_ratio(observed: Sequence[int], shares: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of ``observed`` counts against ``shares`` (which sum to 1).

    A group with a share of 0 that has rows anyway is a certain mismatch
    (p = 0): the configuration said nobody goes there. Groups with a share of
    0 and no rows take no part in the test.
    """
    if len(observed) != len(shares):
        raise ValueError(f"{len(observed)} observed counts for {len(shares)} shares")
    if any(n < 0 for n in observed):
        raise ValueError(f"negative count in {list(observed)}")
    if any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-9):
        raise ValueError(f"shares must be at least 0 and sum to 1, not {list(shares)}")
    total = sum(observed)
    expected = tuple(total * s for s in shares)
    counts = tuple(int(n) for n in observed)
    if total == 0:
        return SampleRatio(counts, expected, None, None)
    if any(n > 0 and s == 0 for n, s in zip(observed, shares, strict=True)):
        return SampleRatio(counts, expected, math.inf, 0.0)
    cells = [(n, e) for n, e in zip(observed, expected, strict=True) if e > 0]
    if len(cells) < 2:
        return SampleRatio(counts, expected, None, None)
    statistic = sum((n - e) ** 2 / e for n, e in cells)
    p_value = float(chi2.sf(statistic, len(cells) - 1))
    return SampleRatio(counts, expected, statistic, p_value)


@dataclass(frozen=True, slots=True)
class WeightedRate:
    """An arm's conversion rate, raw and weighted by the inverse of its draw probability."""

    rows: int
    converted: int
    raw: float | None
    """converted / rows."""
    rate: float | None
    """The self-normalised inverse-propensity-weighted (Hájek) rate."""
    interval: Interval | None
    """95 %, delta method; None without rows or when every row had the same outcome."""


def ipw_rate(
    probabilities: Sequence[float],
    converted: Sequence[bool | int],
    counts: Sequence[int] | None = None,
) -> WeightedRate:
    """The conversion rate one arm would have had if everyone had been given it.

    Each row is a customer given this arm, with ``probabilities[i]`` the
    probability the arm was drawn with for them, ``converted[i]`` the outcome,
    and optionally ``counts[i]`` identical rows it stands for (so the database
    can group them). With weights ``w = 1/p`` the Hájek estimate is
    ``Σ w·y / Σ w``: unlike the unweighted rate it is not biased when the
    allocation moved towards the arm while conversion happened to change too,
    and unlike the Horvitz–Thompson sum it stays within [0, 1].

    The interval is the delta method (linearisation of the ratio of two
    sums, as in survey sampling): ``var = Σ w²(y - rate)² / (Σ w)²``, the
    normal quantile, clipped to [0, 1]. It treats the draws as independent
    given the logged probabilities, which batched adaptive allocation
    satisfies approximately; it is None when every row had the same outcome
    (no spread to estimate from) or there are no rows.
    """
    n = len(probabilities)
    if len(converted) != n or (counts is not None and len(counts) != n):
        raise ValueError("probabilities, converted and counts must have the same length")
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(converted, dtype=np.float64)
    c = np.ones(n) if counts is None else np.asarray(counts, dtype=np.float64)
    if n and (not np.all((p > 0) & (p <= 1)) or np.any(c < 0)):
        raise ValueError("every probability must be in (0, 1] and every count at least 0")
    if n and not np.all((y == 0) | (y == 1)):
        raise ValueError("converted must be 0 or 1 (False or True)")
    rows = int(c.sum())
    hits = int((c * y).sum())
    if rows == 0:
        return WeightedRate(0, 0, None, None, None)
    w = c / p  # each of the c identical rows weighs 1/p
    weight = float(w.sum())
    rate = float((w * y).sum() / weight)
    variance = float((c * np.square((y - rate) / p)).sum()) / (weight * weight)
    interval = None
    if variance > 0:
        half = Z95 * math.sqrt(variance)
        interval = Interval(max(0.0, rate - half), min(1.0, rate + half))
    return WeightedRate(rows, hits, hits / rows, rate, interval)


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}: need 0 ≤ successes ≤ n")


__all__ = [
    "CONFIDENCE",
    "MISMATCH_P",
    "Z95",
    "Difference",
    "Interval",
    "Moments",
    "SampleRatio",
    "WeightedRate",
    "ipw_rate",
    "mean_difference",
    "rate_difference",
    "sample_ratio",
    "wilson",
]
