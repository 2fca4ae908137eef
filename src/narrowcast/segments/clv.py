"""Customer lifetime value: how many more purchases (BG/NBD), worth how much (Gamma-Gamma).

Segments such as "valuable but slipping away" need a forward-looking number per
customer, not only what the customer has spent. The BG/NBD model (Fader, Hardie & Lee
2005, "Counting your customers the easy way: an alternative to the Pareto/NBD model",
Marketing Science 24(2), https://www.brucehardie.com/papers/018/) takes a customer to buy
as a Poisson process with rate λ while alive and to drop out for good right after any
purchase with probability p, with λ ~ Gamma(shape r, rate α) and p ~ Beta(a, b) across
customers. From a customer's frequency x (purchases after the first), recency t_x (time
of the last purchase) and age T (time since the first purchase), it gives in closed form
the likelihood, the probability that the customer is still alive, and the expected
number of purchases in the next t periods (which needs the Gauss hypergeometric 2F1).

The Gamma-Gamma model (Colombo & Jiang 1999; Fader & Hardie 2013, "The Gamma-Gamma model
of monetary value", https://www.brucehardie.com/notes/025/) takes each transaction value
of a customer to be Gamma(p, ν), with ν ~ Gamma(q, v) across customers and independent of
the purchase process. Given the mean zbar of a customer's x repeat transactions, the
expected value of a future transaction is a weighted mean of zbar and the population
mean p·v/(q - 1), weighted towards zbar as x grows. Lifetime value over a horizon is the
expected number of purchases times that expected value, optionally discounted per period.

Units: time is counted in periods of ``unit_days`` days (weeks by default, as in the
papers), so r/α is purchases per period and parameters fitted in weeks only make sense
for inputs in weeks. Money (zbar, v, expected values) is in the currency of the input
values. Following the CDNOW convention of the papers, a customer's first purchase day is
time 0 and purchases on the same day count as one transaction with their summed value.
Everything here is written from the formulas in those two papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize  # type: ignore[import-untyped, unused-ignore]
from scipy.special import (  # type: ignore[import-untyped, unused-ignore]
    betaln,
    expit,
    gammaln,
    hyp2f1,
)

from narrowcast.errors import NarrowcastError

FloatArray = npt.NDArray[np.float64]
K = TypeVar("K", bound=Hashable)

# Parameters are searched within [1/_RUNAWAY, _RUNAWAY] (scale parameters relative to the
# data's own scale). A fit that ends on that boundary was still climbing towards 0 or ∞:
# the likelihood has no interior maximum and the numbers would be meaningless.
_RUNAWAY = 1e6


class ModelFitError(NarrowcastError, ValueError):
    """The data cannot support the model; the message says why and what to try."""


@dataclass(frozen=True, eq=False)
class RfmSummary(Generic[K]):
    """Per-customer frequency, recency, age and monetary value at ``period_end``.

    Row i describes ``customer_ids[i]``; customers are in the order in which they first
    appear in the transactions. ``frequency`` is x (repeat transactions), ``recency`` is
    t_x and ``age`` is T (both in periods since the first purchase) and ``monetary`` is
    zbar, the mean value of the repeat transactions (0 when x is 0).
    """

    customer_ids: tuple[K, ...]
    frequency: npt.NDArray[np.int64]
    recency: FloatArray
    age: FloatArray
    monetary: FloatArray


def summarise(
    transactions: Iterable[tuple[K, date, float]],
    *,
    period_end: date,
    unit_days: float = 7.0,
) -> RfmSummary[K]:
    """Summarise ``(customer_id, date, value)`` purchases up to and including ``period_end``.

    Datetimes count by their calendar date. Purchases after ``period_end`` are ignored,
    and so are customers whose first purchase is after it. Values are summed per day, so
    refunds recorded as negative values on the purchase day reduce that day's value.
    """
    if not unit_days > 0:
        raise ValueError(f"unit_days must be positive, got {unit_days!r}")
    end = _day(period_end)
    per_customer: dict[K, dict[date, float]] = {}
    for customer, when, value in transactions:
        day = _day(when)
        if day > end:
            continue
        days = per_customer.setdefault(customer, {})
        days[day] = days.get(day, 0.0) + float(value)

    n = len(per_customer)
    frequency = np.zeros(n, dtype=np.int64)
    recency = np.zeros(n)
    age = np.zeros(n)
    monetary = np.zeros(n)
    for i, days in enumerate(per_customer.values()):
        first, *repeats = sorted(days)
        age[i] = (end - first).days / unit_days
        if repeats:
            frequency[i] = len(repeats)
            recency[i] = (repeats[-1] - first).days / unit_days
            monetary[i] = math.fsum(days[d] for d in repeats) / len(repeats)
    for column in (frequency, recency, age, monetary):
        column.setflags(write=False)
    return RfmSummary(tuple(per_customer), frequency, recency, age, monetary)


def _day(when: date) -> date:
    # datetime is a subclass of date: test it first.
    return when.date() if isinstance(when, datetime) else when


@dataclass(frozen=True)
class BgNbd:
    """A fitted (or published) BG/NBD model; time in the periods it was fitted in.

    ``log_likelihood`` is the maximised total log-likelihood when the model came from
    :func:`fit_bgnbd`, else None.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float | None = None

    def __post_init__(self) -> None:
        _check_positive(r=self.r, alpha=self.alpha, a=self.a, b=self.b)

    def probability_alive(
        self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """P(still alive at T | x, t_x, T); 1 for customers who never bought again.

        1 / (1 + δ(x>0) · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)), computed through
        log-odds so that long-silent frequent buyers give 0 instead of overflowing.
        """
        xs, recency, age = _predict_columns(x, t_x, T)
        return np.asarray(expit(-self._log_odds_dead(xs, recency, age)), dtype=np.float64)

    def expected_purchases(
        self, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """Expected number of purchases in (T, T + t] given x, t_x and T.

        (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]
        times P(alive); Fader, Hardie & Lee (2005), conditional expectation.
        """
        xs, recency, age = _predict_columns(x, t_x, T)
        ahead = np.asarray(t, dtype=np.float64)
        if np.any(ahead < 0) or not np.all(np.isfinite(ahead)):
            raise ValueError("t (periods ahead) must be finite and non-negative")
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        horizon = alpha + age + ahead
        survival = np.exp((r + xs) * (np.log(alpha + age) - np.log(horizon)))
        hyper = hyp2f1(r + xs, b + xs, a + b + xs - 1.0, ahead / horizon)
        while_alive = (a + b + xs - 1.0) / (a - 1.0) * (1.0 - survival * hyper)
        alive = expit(-self._log_odds_dead(xs, recency, age))
        return np.asarray(while_alive * alive, dtype=np.float64)

    def _log_odds_dead(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        repeat = x > 0
        # x - 1 only matters where x > 0; clamp so that b + x - 1 stays positive elsewhere.
        x1 = np.maximum(x, 1.0)
        log_odds = (
            np.log(self.a)
            - np.log(self.b + x1 - 1.0)
            + (self.r + x1) * (np.log(self.alpha + T) - np.log(self.alpha + t_x))
        )
        return np.where(repeat, log_odds, -np.inf)


@dataclass(frozen=True)
class GammaGamma:
    """A fitted (or published) Gamma-Gamma spend model; money in the input's currency.

    ``v`` is the scale called γ in Fader & Hardie (2013). ``log_likelihood`` is the
    maximised log-likelihood of the repeat customers' zbar when fitted, else None.
    """

    p: float
    q: float
    v: float
    log_likelihood: float | None = None

    def __post_init__(self) -> None:
        _check_positive(p=self.p, q=self.q, v=self.v)

    @property
    def population_mean(self) -> float:
        """Expected transaction value of a customer we know nothing about: p·v/(q-1)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else math.inf

    def expected_value(self, x: npt.ArrayLike, zbar: npt.ArrayLike) -> FloatArray:
        """E[value of a future transaction | x repeat transactions of mean zbar].

        p·(v + x·zbar) / (p·x + q - 1), i.e. the population mean p·v/(q-1) weighted by
        (q-1)/(p·x+q-1) plus zbar weighted by p·x/(p·x+q-1). For x = 0, zbar is ignored.
        """
        xs = np.asarray(x, dtype=np.float64)
        mean = np.asarray(zbar, dtype=np.float64)
        if np.any(xs < 0) or np.any((xs > 0) & ~(mean > 0)):
            raise ValueError("x must be >= 0, and zbar > 0 wherever x > 0")
        denominator = self.p * xs + self.q - 1.0
        if np.any(denominator <= 0):
            raise ValueError(
                f"p·x + q <= 1 (p = {self.p:.4g}, q = {self.q:.4g}) for some customers: "
                "their expected spend is infinite under this model"
            )
        value = self.p * (self.v + xs * np.where(xs > 0, mean, 0.0)) / denominator
        return np.asarray(value, dtype=np.float64)


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for customers with the given x, t_x and T.

    The closed-form log-likelihood of Fader, Hardie & Lee (2005) is maximised over the
    logarithms of (r, α, a, b), with time rescaled to mean T = 1 during the search so that
    the starting point suits any time unit. Raises ModelFitError when the data cannot
    identify the model.
    """
    xs, recency, age = _fit_columns(x, t_x, T)
    if xs.size == 0:
        raise ModelFitError("no customers to fit: x, t_x and T are empty")
    repeat = xs > 0
    n_repeat = int(np.sum(repeat))
    if n_repeat < 4:
        raise ModelFitError(
            f"only {n_repeat} of the {xs.size} customers bought again (x > 0); the BG/NBD "
            "has 4 parameters and needs many more repeat buyers to tell purchase rates from "
            "dropout — use a longer calibration period or a larger customer sample"
        )
    scale = float(np.mean(age))
    if not scale > 0:
        raise ModelFitError("every customer has T = 0: choose a period_end after the purchases")
    recency, age = recency / scale, age / scale
    # x takes few distinct values: the gamma and beta functions are evaluated per value.
    levels, level_of = np.unique(xs, return_inverse=True)
    levels1 = np.maximum(levels, 1.0)

    def negative_log_likelihood(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        common = gammaln(r + levels) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
        stays = betaln(a, b + levels)
        drops = betaln(a + 1.0, b + levels1 - 1.0)
        rate_x = r + xs
        stays_i = stays[level_of] - rate_x * np.log(alpha + age)
        drops_i = np.where(repeat, drops[level_of] - rate_x * np.log(alpha + recency), -np.inf)
        total = np.sum(common[level_of]) + np.sum(np.logaddexp(stays_i, drops_i))
        return -float(total) / xs.size

    fitted, mean_ll = _maximise(negative_log_likelihood, ("r", "alpha", "a", "b"), xs.size)
    r, alpha, a, b = fitted
    # The likelihood is a density of the x repeat purchase times: rescaling time by s
    # multiplies it by s^x.
    log_likelihood = mean_ll * xs.size - float(np.sum(xs)) * math.log(scale)
    return BgNbd(
        r=float(r),
        alpha=float(alpha) * scale,
        a=float(a),
        b=float(b),
        log_likelihood=log_likelihood,
    )


def fit_gamma_gamma(x: npt.ArrayLike, zbar: npt.ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from the customers with x > 0.

    Uses the closed-form density of zbar given x from Fader & Hardie (2013), maximised over
    log (p, q, v) with money rescaled to mean zbar = 1 during the search. Customers with
    x = 0 carry no spend information and are left out.
    """
    xs, mean = _column("x", x), _column("zbar", zbar)
    if xs.size != mean.size:
        raise ModelFitError(
            f"x and zbar need one value per customer; got {xs.size} and {mean.size} values"
        )
    if np.any(xs < 0) or np.any(xs != np.round(xs)):
        raise ModelFitError("x must be whole numbers >= 0 (repeat transactions)")
    if xs.size == 0:
        raise ModelFitError("no customers to fit: x and zbar are empty")
    repeat = xs > 0
    n_repeat = int(np.sum(repeat))
    if n_repeat < 3:
        raise ModelFitError(
            f"only {n_repeat} customer(s) with a repeat purchase (x > 0) out of {xs.size}; "
            "the spend model has 3 parameters and needs many more — use a longer calibration "
            "period or a larger customer sample"
        )
    bad = np.flatnonzero(repeat & ~(mean > 0))
    if bad.size:
        raise ModelFitError(
            f"{bad.size} customer(s) with x > 0 have zbar <= 0 (first at index {bad[0]}); "
            "the model needs positive spend — leave out customers whose repeat purchases "
            "are free or refunded"
        )
    xs, mean = xs[repeat], mean[repeat]
    scale = float(np.mean(mean))
    mean = mean / scale
    log_x, log_mean = np.log(xs), np.log(mean)
    levels, level_of = np.unique(xs, return_inverse=True)

    def negative_log_likelihood(log_params: FloatArray) -> float:
        p, q, v = np.exp(log_params)
        px = p * xs
        gammas = gammaln(p * levels + q) - gammaln(p * levels) - gammaln(q)
        ll = (
            gammas[level_of]
            + q * np.log(v)
            + (px - 1.0) * log_mean
            + px * log_x
            - (px + q) * np.log(v + xs * mean)
        )
        return -float(np.sum(ll)) / xs.size

    fitted, mean_ll = _maximise(negative_log_likelihood, ("p", "q", "v"), xs.size)
    p, q, v = fitted
    if q <= 1.0:
        raise ModelFitError(
            f"fitted q = {q:.3g} <= 1 means an unbounded mean spend: a few very large "
            "average values dominate; check for outliers or data errors in the values"
        )
    log_likelihood = mean_ll * xs.size - xs.size * math.log(scale)
    return GammaGamma(p=float(p), q=float(q), v=float(v) * scale, log_likelihood=log_likelihood)


def clv(
    bgnbd: BgNbd,
    gg: GammaGamma,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    zbar: npt.ArrayLike,
    *,
    horizon_periods: float,
    discount_rate_per_period: float = 0.0,
) -> FloatArray:
    """Expected value of each customer's purchases in the next ``horizon_periods``.

    Without discounting: E[Y(h) | x, t_x, T] · E[M | x, zbar], the BG/NBD expected number
    of purchases over the horizon h times the Gamma-Gamma expected transaction value (the
    two models are independent). With a rate d per period the horizon is cut into whole
    periods (the last one possibly partial) ending at s_1 < ... < s_k = h, and the
    purchases expected in each, E[Y(s_j)] - E[Y(s_(j-1))], are discounted by
    (1 + d)^(-s_j), i.e. as if paid at the end of their period.
    """
    if not (math.isfinite(horizon_periods) and horizon_periods >= 0):
        raise ValueError(f"horizon_periods must be finite and >= 0, got {horizon_periods!r}")
    if not (math.isfinite(discount_rate_per_period) and discount_rate_per_period > -1):
        raise ValueError(f"discount_rate_per_period must be > -1, got {discount_rate_per_period!r}")
    value = gg.expected_value(x, zbar)
    purchases = discounted_purchases(
        bgnbd, x, t_x, T, horizon_periods=horizon_periods, rate=discount_rate_per_period
    )
    return np.asarray(purchases * value, dtype=np.float64)


def discounted_purchases(
    bgnbd: BgNbd,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    *,
    horizon_periods: float,
    rate: float = 0.0,
) -> FloatArray:
    """Expected purchases over the horizon, each discounted by (1 + rate)^-(end of its period)."""
    if rate == 0 or horizon_periods == 0:
        return bgnbd.expected_purchases(horizon_periods, x, t_x, T)
    ends = np.minimum(np.arange(1.0, math.ceil(horizon_periods) + 1.0), horizon_periods)
    cumulative = [np.zeros_like(np.asarray(x, dtype=np.float64))]
    cumulative += [bgnbd.expected_purchases(end, x, t_x, T) for end in ends]
    discounted = sum(
        (after - before) * (1.0 + rate) ** -end
        for before, after, end in zip(cumulative[:-1], cumulative[1:], ends, strict=True)
    )
    return np.asarray(discounted, dtype=np.float64)


def _maximise(
    negative_log_likelihood: Callable[[FloatArray], float],
    names: tuple[str, ...],
    n_customers: int,
) -> tuple[FloatArray, float]:
    """Parameters (on the rescaled data) minimising the per-customer negative log-likelihood.

    The search is over log-parameters from 0 (every parameter 1) within ±log(_RUNAWAY).
    Returns the parameters and the maximised mean log-likelihood.
    """
    limit = math.log(_RUNAWAY)
    bounds = [(-limit, limit)] * len(names)
    start = np.zeros(len(names))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = minimize(
            negative_log_likelihood,
            start,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-14, "gtol": 1e-9},
        )
        if not (result.success and np.isfinite(result.fun)):
            # Finite-difference gradients can stall the line search on flat likelihoods;
            # Nelder-Mead needs no gradient and is the fallback before giving up.
            result = minimize(
                negative_log_likelihood,
                result.x if np.all(np.isfinite(result.x)) else start,
                method="Nelder-Mead",
                bounds=bounds,
                options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 1000 * len(names)},
            )
    if not (result.success and np.isfinite(result.fun)):
        raise ModelFitError(
            f"the likelihood maximisation did not converge on {n_customers} customers "
            f"({result.message}); they may be too few, or too alike, to fit the model — use "
            "more customers or a longer calibration period"
        )
    edge = limit - 1e-3
    runaways = [
        f"{name} ran off towards {'infinity' if v > 0 else 'zero'}"
        for name, v in zip(names, result.x, strict=True)
        if abs(v) > edge
    ]
    if runaways:
        raise ModelFitError(
            f"parameter {', '.join(runaways)} "
            f"on {n_customers} customers: the likelihood has no maximum inside the parameter "
            "space, usually because there are too few customers or too little variation "
            "between them; use more customers or a longer calibration period"
        )
    return np.exp(np.asarray(result.x, dtype=np.float64)), -float(result.fun)


def _check_positive(**params: float) -> None:
    for name, value in params.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"parameter {name} must be a positive finite number, got {value!r}")


def _column(name: str, values: npt.ArrayLike) -> FloatArray:
    column = np.asarray(values, dtype=np.float64)
    if column.ndim != 1:
        raise ModelFitError(
            f"{name} must be one value per customer (1-D), got shape {column.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(column))
    if bad.size:
        raise ModelFitError(f"{name} has a missing or infinite value at index {bad[0]}")
    return column


def _fit_columns(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """x, t_x and T for fitting: equal-length 1-D columns, checked, or ModelFitError."""
    xs, recency, age = _column("x", x), _column("t_x", t_x), _column("T", T)
    if not xs.size == recency.size == age.size:
        raise ModelFitError(
            "x, t_x and T need one value per customer; got "
            f"{xs.size}, {recency.size} and {age.size} values"
        )
    _check_rfm(xs, recency, age, ModelFitError)
    return xs, recency, age


def _predict_columns(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """x, t_x and T for predicting: anything that broadcasts together, checked."""
    xs, recency, age = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(recency)) and np.all(np.isfinite(age))):
        raise ValueError("x, t_x and T must be finite numbers")
    _check_rfm(xs, recency, age, ValueError)
    return xs, recency, age


def _check_rfm(x: FloatArray, t_x: FloatArray, T: FloatArray, error: type[ValueError]) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise error("x must be whole numbers >= 0 (repeat transactions)")
    if np.any(t_x < 0) or np.any(t_x > T):
        raise error("every customer needs 0 <= t_x <= T (recency cannot exceed age)")
