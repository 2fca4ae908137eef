"""Fitting the CLV models on the store's orders and keeping each customer's ``clv`` score.

``clv`` is the only score a database cannot compute in a query: it needs the
BG/NBD and Gamma-Gamma models (``clv.py``) fitted by maximum likelihood on the
whole purchase history. ``score_clv`` reads every customer's orders summed per
UTC day (the models' transaction unit), fits both models with weeks as the
period, predicts each customer's value over ``[scores.clv] horizon``, and
replaces the ``clv`` rows of ``customer_scores`` in one transaction — so rules
that use ``clv`` see either the old or the new fit, never a mix.

Customers with repeat orders whose average value is not positive (refunds
recorded as negative orders, zero-value orders) cannot be valued by the
Gamma-Gamma model; their ``clv`` is left missing and the report counts them.

The Gamma-Gamma model assumes one population of spenders. A shop that mixes
consumers' 50-euro baskets with 5,000-euro business tickets may not fit it
(the fit finds an unbounded mean spend). With ``spend = "auto"`` (the
default) the job then values each future order at the customer's own average
(the shop's average for one-time buyers) and the report says so; with
``spend = "gamma-gamma"`` it refuses instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, delete, func, insert, literal, select

from narrowcast.segments.clv import (
    BgNbd,
    GammaGamma,
    ModelFitError,
    clv,
    discounted_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    summarise,
)
from narrowcast.segments.language import parse_duration
from narrowcast.segments.scores import Clv
from narrowcast.segments.sql import UtcDay
from narrowcast.store.schema import Instant, customer_scores, events

_WEEK = timedelta(weeks=1)
FloatArray = npt.NDArray[np.float64]
_BATCH = 10_000


@dataclass(frozen=True)
class ClvReport:
    at: datetime
    customers: int
    """Customers with at least one order (and so a clv)."""
    unvalued: int
    """Repeat customers whose average order value is not positive: clv missing."""
    bgnbd: BgNbd
    gamma_gamma: GammaGamma | None
    """None when orders were valued at the customers' averages."""
    horizon_weeks: float
    total: float
    spend_note: str = ""
    """Why the average was used instead of Gamma-Gamma, when it was."""

    def summary(self) -> str:
        b, g = self.bgnbd, self.gamma_gamma
        spend = (
            f"Gamma-Gamma p={g.p:.4g} q={g.q:.4g} v={g.v:.4g}"
            if g is not None
            else "orders valued at each customer's average order"
        )
        text = (
            f"clv for {self.customers:,} customers over {self.horizon_weeks:g} weeks, "
            f"as of {self.at:%Y-%m-%d %H:%M} UTC: total {self.total:,.2f}, "
            f"mean {self.total / max(self.customers - self.unvalued, 1):,.2f}\n"
            f"  BG/NBD r={b.r:.4g} alpha={b.alpha:.4g} a={b.a:.4g} b={b.b:.4g}; {spend}"
        )
        if self.spend_note:
            text += f"\n  {self.spend_note}"
        if self.unvalued:
            text += (
                f"\n  {self.unvalued:,} repeat customers have a non-positive average order "
                "value; their clv is left missing"
            )
        return text


def score_clv(conn: Connection, now: datetime, settings: Clv) -> ClvReport:
    """Fit the models on orders up to ``now`` and store every customer's ``clv``."""
    at = now.astimezone(UTC)
    day = UtcDay(events.c.ts)
    per_day = (
        select(events.c.customer_id, day, func.sum(func.coalesce(events.c.value, 0.0)))
        .where(events.c.type == settings.event, events.c.ts <= literal(at, Instant))
        .group_by(events.c.customer_id, day)
    )
    rows = conn.execute(per_day.execution_options(yield_per=_BATCH))
    summary = summarise(
        ((customer, date.fromisoformat(when), float(value)) for customer, when, value in rows),
        period_end=at.date(),
        unit_days=7.0,
    )
    x = summary.frequency.astype(np.float64)
    t_x, age, zbar = summary.recency, summary.age, summary.monetary
    bgnbd = fit_bgnbd(x, t_x, age)
    repeat = x > 0
    valued = ~repeat | (zbar > 0)
    horizon = parse_duration(settings.horizon) / _WEEK
    gamma_gamma: GammaGamma | None = None
    note = ""
    if settings.spend != "average":
        try:
            gamma_gamma = fit_gamma_gamma(x[repeat & valued], zbar[repeat & valued])
        except ModelFitError as exc:
            if settings.spend == "gamma-gamma":
                raise ModelFitError(
                    f'{exc} — or set [scores.clv] spend = "average" in segments.toml '
                    "to value orders at each customer's average"
                ) from exc
            note = f"the Gamma-Gamma spend model does not fit these orders ({exc}); used averages"
    values = np.full(x.shape, np.nan)
    if gamma_gamma is not None:
        values[valued] = clv(
            bgnbd,
            gamma_gamma,
            x[valued],
            t_x[valued],
            age[valued],
            zbar[valued],
            horizon_periods=horizon,
            discount_rate_per_period=settings.discount_rate,
        )
    else:
        values[valued] = _at_average(
            bgnbd, x[valued], t_x[valued], age[valued], zbar[valued], horizon, settings
        )
    conn.execute(delete(customer_scores).where(customer_scores.c.name == "clv"))
    batch = []
    for customer, value in zip(summary.customer_ids, values.tolist(), strict=True):
        worth = None if np.isnan(value) else float(value)
        batch.append({"customer_id": customer, "name": "clv", "value": worth, "computed_at": at})
        if len(batch) == _BATCH:
            conn.execute(insert(customer_scores), batch)
            batch = []
    if batch:
        conn.execute(insert(customer_scores), batch)
    return ClvReport(
        at=at,
        customers=len(summary.customer_ids),
        unvalued=int((~valued).sum()),
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
        horizon_weeks=horizon,
        total=float(np.nansum(values)),
        spend_note=note,
    )


def _at_average(
    bgnbd: BgNbd,
    x: FloatArray,
    t_x: FloatArray,
    age: FloatArray,
    zbar: FloatArray,
    horizon: float,
    settings: Clv,
) -> FloatArray:
    """Expected purchases × the customer's average repeat order (the shop's for x = 0)."""
    shop = float(zbar[x > 0].mean()) if np.any(x > 0) else 0.0
    spend = np.where(x > 0, zbar, shop)
    purchases = discounted_purchases(
        bgnbd, x, t_x, age, horizon_periods=horizon, rate=settings.discount_rate
    )
    return np.asarray(purchases * spend, dtype=np.float64)
