"""The uplift arithmetic against published numbers, scipy, and simulations with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped, unused-ignore]

from narrowcast.optimize.uplift import (
    MISMATCH_P,
    Z95,
    Moments,
    ipw_rate,
    mean_difference,
    rate_difference,
    sample_ratio,
    wilson,
)

# --- Wilson and Newcombe --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe 1998a (Stat Med 17:857), Table I, method 3 (score, no continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 10, 0.0000, 0.2775),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_table(successes: int, n: int, low: float, high: float) -> None:
    interval = wilson(successes, n)
    assert interval is not None
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        # Newcombe 1998b (Stat Med 17:873), Table II, method 10 (hybrid score).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_rate_difference_matches_newcombe_worked_examples(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    found = rate_difference(x1, n1, x2, n2)
    assert found.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert found.interval is not None
    assert found.interval.low == pytest.approx(low, abs=5e-5)
    assert found.interval.high == pytest.approx(high, abs=5e-5)
    assert found.method == "Newcombe hybrid score"


def test_an_empty_group_has_no_difference_and_no_interval() -> None:
    assert wilson(0, 0) is None
    for found in (rate_difference(3, 10, 0, 0), rate_difference(0, 0, 3, 10)):
        assert found.estimate is None and found.interval is None
    both = rate_difference(0, 0, 0, 0)
    assert both.estimate is None and both.interval is None


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="successes"):
        rate_difference(11, 10, 0, 10)
    with pytest.raises(ValueError, match="successes"):
        wilson(-1, 10)


def test_newcombe_keeps_its_coverage_for_small_rates_where_wald_does_not() -> None:
    """3 % vs 2 % on 400 per group: the hybrid score interval covers the truth about 95 %
    of the time; the Wald interval (what the report used before) falls short."""
    rng = np.random.default_rng(1998)
    n, p1, p2, runs = 400, 0.03, 0.02, 2000
    x1 = rng.binomial(n, p1, runs)
    x2 = rng.binomial(n, p2, runs)
    truth = p1 - p2
    newcombe = wald = 0
    for a, b in zip(x1.tolist(), x2.tolist(), strict=True):
        found = rate_difference(a, n, b, n)
        assert found.interval is not None
        newcombe += found.interval.low <= truth <= found.interval.high
        r1, r2 = a / n, b / n
        half = Z95 * math.sqrt(r1 * (1 - r1) / n + r2 * (1 - r2) / n)
        wald += r1 - r2 - half <= truth <= r1 - r2 + half
    assert 0.935 <= newcombe / runs <= 0.97
    assert wald / runs < newcombe / runs


# --- Welch -----------------------------------------------------------------------------------


def test_moments_from_values_and_their_mean_and_variance() -> None:
    m = Moments.of([1.0, 2.0, 3.0, 4.0])
    assert (m.n, m.total, m.squares) == (4, 10.0, 30.0)
    assert m.mean == 2.5 and m.variance == pytest.approx(5 / 3)
    assert Moments(0, 0.0, 0.0).mean is None and Moments(1, 5.0, 25.0).variance is None
    assert Moments.of([7.1] * 3).variance == 0.0  # never a hair below zero


def test_welch_by_hand() -> None:
    """[1, 2, 3, 4] vs [2, 4]: means 2.5 and 3, variances 5/3 and 2;
    se² = (5/3)/4 + 2/2 = 17/12, df = se⁴ / ((5/12)²/3 + 1²/1) = 1.89716…"""
    found = mean_difference(Moments.of([1, 2, 3, 4]), Moments.of([2, 4]))
    se = math.sqrt(17 / 12)
    df = (17 / 12) ** 2 / ((5 / 12) ** 2 / 3 + 1)
    assert df == pytest.approx(1.89716, abs=1e-5)
    half = stats.t.ppf(0.975, df) * se
    assert found.estimate == -0.5
    assert found.interval is not None
    assert found.interval.low == pytest.approx(-0.5 - half)
    assert found.interval.high == pytest.approx(-0.5 + half)
    assert found.method == "Welch"


def test_welch_matches_scipy_on_revenue_per_customer() -> None:
    rng = np.random.default_rng(7)
    treated = np.where(rng.random(900) < 0.05, rng.gamma(2.0, 40.0, 900), 0.0)
    control = np.where(rng.random(100) < 0.03, rng.gamma(2.0, 40.0, 100), 0.0)
    found = mean_difference(Moments.of(treated), Moments.of(control))
    expected = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(0.95)
    assert found.estimate == pytest.approx(treated.mean() - control.mean())
    assert found.interval is not None
    assert found.interval.low == pytest.approx(expected.low)
    assert found.interval.high == pytest.approx(expected.high)


def test_welch_from_sums_as_a_database_returns_them() -> None:
    values = [0.0, 0.0, 49.9, 0.0, 120.0, 15.5]
    sums = Moments(len(values), sum(values), sum(v * v for v in values))
    assert mean_difference(sums, Moments.of([0.0, 10.0])) == mean_difference(
        Moments.of(values), Moments.of([0.0, 10.0])
    )


@pytest.mark.parametrize(
    ("treated", "control", "estimate"),
    [
        (Moments(0, 0.0, 0.0), Moments.of([1.0, 2.0]), None),  # an empty group
        (Moments.of([5.0]), Moments.of([1.0, 2.0]), 3.5),  # one value: no variance
        (Moments.of([0.0] * 50), Moments.of([0.0] * 5), 0.0),  # nobody bought: no spread
    ],
)
def test_welch_without_an_interval(
    treated: Moments, control: Moments, estimate: float | None
) -> None:
    found = mean_difference(treated, control)
    assert found.estimate == estimate and found.interval is None


def test_a_constant_control_still_has_an_interval() -> None:
    """Nobody in the holdout bought: the treated group's spread alone makes the interval."""
    found = mean_difference(Moments.of([0.0, 0.0, 30.0, 0.0, 60.0]), Moments.of([0.0] * 20))
    assert found.interval is not None and found.interval.low < 18.0 < found.interval.high


# --- sample ratio mismatch ---------------------------------------------------------------------


def test_sample_ratio_mismatch_from_kohavi_tang_xu() -> None:
    """Trustworthy Online Controlled Experiments (2020), ch. 3: 821,588 vs 815,482 users
    in a 50/50 split, p = 1.8e-6 — a mismatch."""
    found = sample_ratio([821_588, 815_482], [0.5, 0.5])
    assert found.expected == (818_535.0, 818_535.0)
    assert found.statistic == pytest.approx(2 * 3053**2 / 818_535)
    assert found.p_value == pytest.approx(1.8e-6, rel=0.02)
    assert found.mismatch


def test_sample_ratio_matches_scipy_chisquare_and_passes_a_fair_split() -> None:
    observed, shares = [905, 95], [0.9, 0.1]
    found = sample_ratio(observed, shares)
    expected = stats.chisquare(observed, [900, 100])
    assert found.statistic == pytest.approx(expected.statistic)
    assert found.p_value == pytest.approx(expected.pvalue)
    assert not found.mismatch and found.p_value is not None and found.p_value > MISMATCH_P


def test_three_groups() -> None:
    found = sample_ratio([850, 100, 50], [0.855, 0.095, 0.05])
    expected = stats.chisquare([850, 100, 50], [855, 95, 50])
    assert found.p_value == pytest.approx(expected.pvalue)


def test_sample_ratio_without_data_or_with_a_forbidden_group() -> None:
    nothing = sample_ratio([0, 0], [0.9, 0.1])
    assert nothing.p_value is None and not nothing.mismatch
    one_group = sample_ratio([120, 0], [1.0, 0.0])
    assert one_group.p_value is None and not one_group.mismatch
    forbidden = sample_ratio([120, 3], [1.0, 0.0])  # no holdout configured, holdout rows anyway
    assert forbidden.p_value == 0.0 and forbidden.mismatch


def test_sample_ratio_refuses_shares_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        sample_ratio([10, 10], [0.9, 0.2])
    with pytest.raises(ValueError, match="2 observed counts for 3 shares"):
        sample_ratio([10, 10], [0.5, 0.25, 0.25])


# --- inverse propensity weighting -----------------------------------------------------------------


def test_ipw_by_hand() -> None:
    """Rows (p, y): (0.5, 1), (0.5, 0), (0.25, 1). Weights 2, 2, 4: rate = 6/8 = 0.75;
    var = (2²·0.25² + 2²·0.75² + 4²·0.25²) / 8² = (0.25 + 2.25 + 1) / 64."""
    found = ipw_rate([0.5, 0.5, 0.25], [True, False, True])
    assert (found.rows, found.converted) == (3, 2)
    assert found.raw == pytest.approx(2 / 3) and found.rate == pytest.approx(0.75)
    half = Z95 * math.sqrt(3.5 / 64)
    assert found.interval is not None
    assert found.interval.low == pytest.approx(0.75 - half)
    assert found.interval.high == 1.0  # 0.75 + 0.458 is clipped


def test_grouped_rows_weigh_as_their_count() -> None:
    one_by_one = ipw_rate([0.2] * 3 + [0.8] * 5 + [0.8], [1, 0, 0, 1, 1, 0, 0, 0, 1])
    grouped = ipw_rate([0.2, 0.2, 0.8, 0.8], [1, 0, 1, 0], counts=[1, 2, 3, 3])
    assert grouped.rate == pytest.approx(one_by_one.rate)
    assert grouped.interval is not None and one_by_one.interval is not None
    assert grouped.interval.as_list() == pytest.approx(one_by_one.interval.as_list())
    assert (grouped.rows, grouped.converted) == (9, 4)


def test_fixed_probabilities_give_the_raw_rate() -> None:
    found = ipw_rate([0.5] * 10, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert found.rate == pytest.approx(0.2) and found.raw == pytest.approx(0.2)


def test_ipw_without_rows_or_without_spread() -> None:
    empty = ipw_rate([], [])
    assert (empty.rows, empty.raw, empty.rate, empty.interval) == (0, None, None, None)
    zeros = ipw_rate([0.5, 0.25], [0, 0], counts=[0, 0])
    assert zeros.rate is None
    none_bought = ipw_rate([0.5, 0.25], [0, 0])
    assert none_bought.rate == 0.0 and none_bought.interval is None


def test_ipw_refuses_impossible_probabilities() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ipw_rate([0.0, 0.5], [1, 0])
    with pytest.raises(ValueError, match="same length"):
        ipw_rate([0.5], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        ipw_rate([0.5], [2])


def test_ipw_recovers_the_truth_under_adaptive_allocation() -> None:
    """Conversion rises from batch to batch while the allocator moves towards arm B
    (10 % → 90 %): B's raw rate is inflated by the late, better batches; the weighted
    rate finds what B would have converted over everyone, and its interval covers it."""
    rng = np.random.default_rng(8)
    batches, per_batch, runs = 8, 500, 400
    batch = np.repeat(np.arange(batches), per_batch)
    rate_b = 0.04 + 0.01 * batch
    draw_b = np.repeat(np.linspace(0.1, 0.9, batches), per_batch)
    truth = float(rate_b.mean())
    estimates, raws, covered = [], [], 0
    for _ in range(runs):
        given_b = rng.random(batch.size) < draw_b
        converted = rng.random(batch.size) < rate_b
        found = ipw_rate(draw_b[given_b].tolist(), converted[given_b].tolist())
        assert found.rate is not None and found.raw is not None and found.interval is not None
        estimates.append(found.rate)
        raws.append(found.raw)
        covered += found.interval.low <= truth <= found.interval.high
    assert abs(np.mean(estimates) - truth) < 0.001
    assert np.mean(raws) - truth > 0.01  # the bias IPW removes
    assert 0.92 <= covered / runs <= 0.975
