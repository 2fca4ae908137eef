"""Beta-Binomial arithmetic and Thompson sampling, shared by every learned choice.

A choice among options (hours, channels, variants) keeps a Beta posterior per
option over its response rate. Thompson sampling draws one rate per option
from the posteriors and takes the best; the probability that an option is
taken is the probability that its draw is the largest, which this module
estimates by drawing many times at once. Planning then picks from those
probabilities with a per-customer uniform number, which is the same as one
Thompson draw per customer — but lets every choice log its probability, so
later evaluation can weight by it (inverse propensity).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import blake2b

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Posterior:
    """Beta(alpha, beta) per option, as arrays of the same length."""

    alpha: Array
    beta: Array

    @property
    def mean(self) -> Array:
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> Array:
        """Pseudo-messages behind each option's estimate."""
        return self.alpha + self.beta

    def update(self, sends: Array, responses: Array) -> Posterior:
        """This posterior, as a prior, after ``responses`` in ``sends`` trials."""
        return Posterior(self.alpha + responses, self.beta + np.maximum(sends - responses, 0.0))

    def as_prior(self, strength: float) -> Posterior:
        """A prior with this posterior's means and ``strength`` pseudo-messages per option.

        The next level down (segment → customer) starts from the level above's
        estimate but no surer than ``strength`` messages, so its own evidence
        can move it.
        """
        mean = self.mean
        return Posterior(mean * strength, (1.0 - mean) * strength)

    def subset(self, index: Sequence[int] | NDArray[np.intp]) -> Posterior:
        picked = np.asarray(index, dtype=np.intp)
        return Posterior(self.alpha[picked], self.beta[picked])


def flat(size: int, rate: float, strength: float) -> Posterior:
    """The same Beta prior with mean ``rate`` for ``size`` options."""
    rate = min(max(rate, 1e-3), 1 - 1e-3)  # a Beta needs both parameters above zero
    return Posterior(np.full(size, rate * strength), np.full(size, (1.0 - rate) * strength))


def best_probabilities(
    posterior: Posterior,
    rng: np.random.Generator,
    draws: int = 4000,
    cost: Array | None = None,
) -> Array:
    """P(option's drawn rate minus its cost is the largest), estimated from ``draws`` draws."""
    size = len(posterior.alpha)
    if size == 1:
        return np.ones(1)
    samples = rng.beta(posterior.alpha, posterior.beta, size=(draws, size))
    if cost is not None:
        samples = samples - cost
    counts = np.bincount(np.argmax(samples, axis=1), minlength=size)
    return np.asarray(counts / draws, dtype=np.float64)


def best_probabilities_each(
    alpha: Array,
    beta: Array,
    rng: np.random.Generator,
    draws: int = 500,
    cost: Array | None = None,
    chunk: int = 2000,
) -> Array:
    """``best_probabilities`` for many posteriors at once: one row of ``alpha``/``beta``
    per customer, one column per option. Drawn in chunks of ``chunk`` rows so memory
    stays bounded (chunk × draws × options numbers)."""
    rows, size = alpha.shape
    out = np.zeros((rows, size))
    if size == 1:
        out[:] = 1.0
        return out
    for start in range(0, rows, chunk):
        a, b = alpha[start : start + chunk], beta[start : start + chunk]
        samples = rng.beta(a[:, None, :], b[:, None, :], size=(len(a), draws, size))
        if cost is not None:
            samples = samples - cost
        winners = np.argmax(samples, axis=2)  # (rows, draws)
        for option in range(size):
            out[start : start + chunk, option] = (winners == option).mean(axis=1)
    return out


def with_floor(probabilities: Array, floor: float) -> Array:
    """Mix in ``floor`` of uniform exploration: every option keeps at least floor / n."""
    size = len(probabilities)
    return np.asarray((1.0 - floor) * probabilities + floor / size, dtype=np.float64)


def pick_cumulative(cumulative: Sequence[float], u: float) -> int:
    """The option whose slice of [0, 1) holds ``u``, from the cumulative shares (the inverse
    of their distribution; a plan sums each set of shares once)."""
    return min(bisect_right(cumulative, u * cumulative[-1]), len(cumulative) - 1)


def prefix(*parts: str) -> bytes:
    """The start of what ``unit_of`` hashes: the parts, each ended by a NUL, computed once for
    many idents."""
    return "".join(part + "\x00" for part in parts).encode()


def unit_of(start: bytes, ident: str) -> float:
    """A stable uniform number in [0, 1) for ``ident`` after ``prefix(*parts)`` (the same on
    every run)."""
    digest = blake2b(start + ident.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def decay(age_days: Array, half_life_days: float) -> Array:
    """Weight of a result ``age_days`` old: it halves every ``half_life_days``."""
    return np.asarray(0.5 ** (np.maximum(age_days, 0.0) / half_life_days), dtype=np.float64)


def smooth_circular(values: Array, weight: float) -> Array:
    """Lend ``weight`` of each hour's evidence to each neighbour (23 and 0 are neighbours)."""
    if weight == 0:
        return values
    neighbours = np.roll(values, 1, axis=-1) + np.roll(values, -1, axis=-1)
    return np.asarray(values + weight * neighbours, dtype=np.float64)


__all__ = [
    "Posterior",
    "best_probabilities",
    "best_probabilities_each",
    "decay",
    "flat",
    "pick_cumulative",
    "prefix",
    "smooth_circular",
    "unit_of",
    "with_floor",
]
