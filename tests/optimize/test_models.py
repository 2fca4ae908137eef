"""The learning arithmetic on its own: Thompson probabilities, stopping, decay, the control hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrowcast.optimize.beta import (
    Posterior,
    best_probabilities,
    decay,
    flat,
    pick_cumulative,
    smooth_circular,
    with_floor,
)
from narrowcast.optimize.control import ControlGroup, period
from narrowcast.optimize.variants import Arm, allocate
from narrowcast.planning.settings import ControlSettings, LearningSettings

SETTINGS = LearningSettings()


def pick(shares: np.ndarray, u: float) -> int:
    return pick_cumulative(np.cumsum(shares).tolist(), u)


def in_control(customer_id: str, now: datetime, settings: ControlSettings) -> bool:
    return ControlGroup(settings, now).holds(customer_id)


def test_best_probabilities_match_the_closed_form_for_two_options() -> None:
    # P(X > Y) for X ~ Beta(3, 1), Y ~ Beta(1, 1) is 3/4 (E[X] of Beta(3,1)).
    posterior = Posterior(np.array([3.0, 1.0]), np.array([1.0, 1.0]))
    chances = best_probabilities(posterior, np.random.default_rng(1), draws=200_000)
    assert chances == pytest.approx([0.75, 0.25], abs=0.005)


def test_cost_is_taken_off_each_draw() -> None:
    posterior = Posterior(np.array([500.0, 450.0]), np.array([500.0, 550.0]))  # 0.50 vs 0.45
    rng = np.random.default_rng(2)
    assert best_probabilities(posterior, rng)[0] == pytest.approx(0.988, abs=0.005)  # z = 2.25
    dear = best_probabilities(posterior, rng, cost=np.array([0.2, 0.0]))
    assert dear[1] > 0.99


def test_floor_and_pick() -> None:
    shares = with_floor(np.array([1.0, 0.0, 0.0, 0.0]), 0.2)
    assert shares == pytest.approx([0.85, 0.05, 0.05, 0.05])
    assert pick(shares, 0.0) == 0 and pick(shares, 0.849) == 0
    assert pick(shares, 0.86) == 1 and pick(shares, 0.9999) == 3


@given(st.lists(st.floats(0.01, 1.0), min_size=1, max_size=24), st.floats(0, 0.999999))
def test_pick_returns_a_valid_option(weights: list[float], u: float) -> None:
    assert 0 <= pick(np.array(weights), u) < len(weights)


def test_pick_draws_in_proportion() -> None:
    shares = np.array([0.2, 0.5, 0.3])
    picks = np.bincount([pick(shares, u) for u in np.linspace(0, 1, 10_000, endpoint=False)])
    assert picks / 10_000 == pytest.approx(shares, abs=1e-3)


def test_decay_halves_every_half_life() -> None:
    assert decay(np.array([0.0, 90.0, 180.0, -3.0]), 90.0) == pytest.approx([1, 0.5, 0.25, 1])


def test_neighbouring_hours_share_evidence_around_midnight() -> None:
    values = np.zeros(24)
    values[0] = 4.0
    smoothed = smooth_circular(values, 0.25)
    assert smoothed[0] == 4.0 and smoothed[1] == 1.0 and smoothed[23] == 1.0
    assert smoothed.sum() == 6.0


def test_a_flat_prior_never_has_zero_parameters() -> None:
    prior = flat(3, 0.0, 20.0)
    assert (prior.alpha > 0).all() and (prior.beta > 0).all()
    assert prior.as_prior(5).strength == pytest.approx([5, 5, 5])


def test_allocation_follows_the_probability_of_being_best() -> None:
    arms = [Arm("a", 50, 10), Arm("b", 50, 5)]
    allocation = allocate(arms, SETTINGS, seed=3)
    assert allocation.winner is None and "below 100 closed sends" in allocation.reason
    assert allocation.weights["a"] > allocation.weights["b"]
    assert sum(allocation.weights.values()) == pytest.approx(1.0)


def test_equal_arms_without_data_split_evenly() -> None:
    allocation = allocate([Arm("a", 0, 0), Arm("b", 0, 0), Arm("c", 0, 0)], SETTINGS, seed=4)
    assert list(allocation.weights.values()) == pytest.approx([1 / 3] * 3, abs=0.02)


def test_a_winner_only_when_the_value_remaining_is_small() -> None:
    clear = allocate([Arm("a", 5000, 1000), Arm("b", 5000, 500)], SETTINGS, seed=5)
    assert clear.winner == "a" and clear.weights == {"a": 1.0}
    assert clear.value_remaining is not None and clear.value_remaining < 0.01
    close = allocate([Arm("a", 5000, 1000), Arm("b", 5000, 990)], SETTINGS, seed=5)
    assert close.winner is None and close.value_remaining is not None
    assert close.value_remaining >= 0.01 and "value remaining" in close.reason
    # Indistinguishable and both known very precisely: nothing left to gain by testing.
    same = allocate([Arm("a", 2_000_000, 400_000), Arm("b", 2_000_000, 400_000)], SETTINGS, 6)
    assert same.winner in ("a", "b")


def test_one_variant_is_not_a_test() -> None:
    allocation = allocate([Arm("only", 10, 1)], SETTINGS)
    assert allocation.weights == {"only": 1.0} and not allocation.adaptive


def test_the_control_group_is_stable_within_a_period_and_sized_by_share() -> None:
    settings = ControlSettings(share=0.05, reshuffle_days=90)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    start = datetime.fromtimestamp(period(now, settings) * 90 * 86400, UTC)
    ids = [f"c{n}" for n in range(20_000)]
    members = {i for i in ids if in_control(i, now, settings)}
    assert 900 <= len(members) <= 1100
    same = {i for i in ids if in_control(i, start + timedelta(days=89, hours=23), settings)}
    assert same == members
    after = {i for i in ids if in_control(i, start + timedelta(days=90), settings)}
    assert len(after & members) < 0.2 * len(members)
    other_salt = ControlSettings(share=0.05, reshuffle_days=90, salt="other")
    assert {i for i in ids if in_control(i, now, other_salt)} != members
    assert not any(in_control(i, now, ControlSettings(share=0)) for i in ids[:100])


def test_an_arm_ruled_out_early_does_not_hold_the_test_open() -> None:
    # The loser got no traffic after its first batch (its chance of being best ~ 0).
    allocation = allocate([Arm("a", 2000, 800), Arm("b", 74, 1)], SETTINGS, seed=7)
    assert allocation.winner == "a", allocation.reason
    # …but an arm still in the running does.
    undecided = allocate([Arm("a", 2000, 800), Arm("b", 20, 8)], SETTINGS, seed=7)
    assert undecided.winner is None and "b below 100" in undecided.reason
