"""The planner's learned choices: send hour, channel, A/B allocation and the global control group.

Results are written the way narrowcast writes them — outbox rows in state
``sent`` and the goal events that follow — and the plans are read back.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from narrowcast.campaigns.model import Variant
from narrowcast.optimize.learner import goals_of
from narrowcast.optimize.trials import Goal
from narrowcast.planning import Dropped, PlanEntry, Planner
from narrowcast.planning.settings import ControlSettings, FrequencySettings, LearningSettings
from narrowcast.store import Store
from narrowcast.worker.report import report
from narrowcast.worker.report_variants import AbTest
from tests.planning.test_planner import DAY, LIBRARY, NOW, SETTINGS, Shop, campaign

MADRID = ZoneInfo("Europe/Madrid")
GOALS = {"earlier": Goal("order", timedelta(hours=3))}
UNCAPPED = SETTINGS.model_copy(update={"frequency": FrequencySettings(per_day=None, per_week=None)})
"""The results below are many messages a week: no frequency cap gets in the way."""
GREEDY = UNCAPPED.model_copy(
    update={"learning": LearningSettings(exploration=0.0, channel_exploration=0.0)}
)


def local(days_ago: int, hour: int) -> datetime:
    day = (NOW - days_ago * DAY).astimezone(MADRID).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=MADRID).astimezone(UTC)


def planned(
    store: Store, chosen: Any, settings: Any = GREEDY, **options: Any
) -> tuple[dict[str, PlanEntry], Any]:
    with store.connect() as conn:
        planner = Planner(conn, LIBRARY, settings, NOW, explain=True, goals=GOALS)
        plan = planner.plan(chosen, **options)
        found = {o.customer_id: o for o in plan if not isinstance(o, Dropped)}
    return found, plan


def audience(shop: Shop, size: int, **options: Any) -> list[str]:
    ids = [f"c{n:03d}" for n in range(size)]
    for id in ids:
        shop.customer(id, email=f"{id}@x.es", email_consent=True, **options)
    return ids


def sent(shop: Shop, id: str, at: datetime, converted: bool, channel: str = "email") -> None:
    shop.message(id, "earlier", at=at, channel=channel)
    if converted:
        shop.event(id, "order", at + timedelta(hours=2), value=20.0)


def test_without_results_auto_send_time_is_the_default_hour(store: Store) -> None:
    shop = Shop()
    audience(shop, 10)
    shop.write(store)
    found, plan = planned(store, campaign(send_time="auto", window="09:00-21:00"))
    assert {e.local_hour for e in found.values()} == {10}
    assert {e.probability for e in found.values()} == {1.0}
    assert "no results yet: the default hour" in dict(plan.explanations["c000"])["learned hour"]


def test_exploration_spreads_a_floor_over_the_allowed_hours(store: Store) -> None:
    shop = Shop()
    audience(shop, 400)
    shop.write(store)
    found, _ = planned(store, campaign(send_time="auto", window="09:00-21:00"), SETTINGS)
    hours = Counter(e.local_hour for e in found.values())
    allowed = 12  # 09:00-20:00: the window, minus quiet hours from 21:00
    assert set(hours) <= set(range(9, 21))
    assert 0.85 * 400 <= hours[10] <= 0.96 * 400
    assert len(hours) >= 8, hours
    floor = 0.1 / allowed
    for entry in found.values():
        expected = 0.9 + floor if entry.local_hour == 10 else floor
        assert entry.probability == pytest.approx(expected)


def test_auto_send_time_learns_response_given_the_send_hour(store: Store) -> None:
    """Sent at 10:00, people rarely ordered; sent at 18:00, half of them did.

    Their sessions cluster at 10:00 (when they were sent to most): the trap a
    histogram of activity falls into. The model reads response per send hour.
    """
    shop = Shop()
    ids = audience(shop, 40)
    for n, id in enumerate(ids):
        for day in range(2, 8):
            sent(shop, id, local(day, 10), converted=False)
            shop.event(id, "session_start", local(day, 10) + timedelta(minutes=5))
        for day in range(8, 10):
            sent(shop, id, local(day, 18), converted=(n + day) % 2 == 0)
    shop.write(store)
    found, plan = planned(store, campaign(send_time="auto", window="09:00-21:00"))
    hours = Counter(e.local_hour for e in found.values())
    # Each customer's own eight messages leave room to explore around the evening.
    assert hours.most_common(1)[0][0] == 18 and hours[18] >= 0.4 * len(ids), hours
    assert set(hours) <= set(range(15, 21)), hours
    assert hours[10] == 0
    why = dict(plan.explanations["c000"])["learned hour"]
    assert "Thompson sampling" in why and "segment response" in why
    for entry in found.values():
        assert 0 < entry.probability <= 1


def test_a_customers_own_history_counts_once_there_is_enough(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 30)
    for id in ids:
        for day in range(2, 6):
            sent(shop, id, local(day, 18), converted=True)
            sent(shop, id, local(day, 12), converted=False)
    # c000 is the opposite: orders after noon, never after the evening message.
    shop.sent = [m for m in shop.sent if m["customer_id"] != "c000"]
    shop.rows[next(t for t in shop.rows if t.name == "events")] = [
        e
        for e in shop.rows[next(t for t in shop.rows if t.name == "events")]
        if e["customer_id"] != "c000"
    ]
    for day in range(2, 42):
        sent(shop, "c000", local(day, 12), converted=True)
        sent(shop, "c000", local(day, 18), converted=False)
    shop.write(store)
    chosen = campaign(send_time="auto", window="09:00-21:00")
    found, plan = planned(store, chosen)
    assert found["c000"].local_hour in (11, 12, 13), dict(plan.explanations["c000"])
    others = Counter(found[id].local_hour for id in ids[1:])
    assert sum(others[h] for h in (17, 18, 19)) >= 25, (others, dict(plan.explanations["c001"]))
    assert "own history (80 messages) gives" in dict(plan.explanations["c000"])["learned hour"]
    few = GREEDY.model_copy(
        update={"learning": LearningSettings(exploration=0, min_customer_messages=100)}
    )
    found, plan = planned(store, chosen, few)
    assert found["c000"].local_hour in (17, 18, 19)
    assert "not counted below 100" in dict(plan.explanations["c000"])["learned hour"]


def test_a_plan_draws_the_same_choices_every_time(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 50, push_consent=True, token=True)
    for n, id in enumerate(ids):
        sent(shop, id, local(3, 10 + n % 8), converted=n % 3 == 0, channel="push")
        sent(shop, id, local(4, 10 + n % 5), converted=n % 4 == 0)
    shop.write(store)
    chosen = campaign(send_time="auto", channel="auto", window="09:00-21:00")
    first, _ = planned(store, chosen, UNCAPPED)
    second, _ = planned(store, chosen, UNCAPPED)
    alone, _ = planned(store, chosen, UNCAPPED, customer_id="c007")
    assert first == second
    assert alone["c007"] == first["c007"]  # dry-run --customer shows what the run does


def test_auto_channel_without_results_follows_channel_order(store: Store) -> None:
    shop = Shop()
    shop.customer("both", email="b@x.es", email_consent=True, push_consent=True, token=True)
    shop.customer("email_only", email="e@x.es", email_consent=True)
    shop.write(store)
    found, plan = planned(store, campaign(channel="auto"))
    assert {k: e.channel for k, e in found.items()} == {"both": "push", "email_only": "email"}
    assert "no results yet: channel_order" in dict(plan.explanations["both"])["channel"]


def test_auto_channel_learns_from_responses_and_cost(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 40, push_consent=True, token=True)
    for n, id in enumerate(ids):
        for day in range(2, 6):
            sent(shop, id, local(day, 10), converted=(n + day) % 2 == 0, channel="email")
            sent(shop, id, local(day, 12), converted=(n + day) % 5 == 0, channel="push")
    shop.customer("no_email", push_consent=True, token=True)
    shop.write(store)
    two = GREEDY.model_copy(update={"channel_order": ("push", "email")})
    found, plan = planned(store, campaign(channel="auto"), two)
    channels = Counter(e.channel for k, e in found.items() if k != "no_email")
    assert channels["email"] >= 0.9 * len(ids), (
        channels,
        [dict(plan.explanations[k])["channel"] for k, e in found.items() if e.channel == "push"][
            :2
        ],
    )
    assert found["no_email"].channel == "push"  # the best is out of reach: the next one
    assert "Thompson sampling" in dict(plan.explanations["c001"])["channel"]
    dear = two.model_copy(
        update={
            "learning": LearningSettings(
                exploration=0, channel_exploration=0, channel_cost={"email": 0.5}
            )
        }
    )
    found, _ = planned(store, campaign(channel="auto"), dear)
    assert Counter(e.channel for e in found.values())["push"] >= 0.7 * len(found)


def test_the_global_control_group_gets_no_marketing(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 1000)
    shop.write(store)
    share = SETTINGS.model_copy(update={"control": ControlSettings(share=0.2, reshuffle_days=30)})
    found, plan = planned(store, campaign(holdout=0.1), share)
    kinds = Counter(e.assignment for e in found.values())
    assert 160 <= kinds["control"] <= 240, kinds
    assert 60 <= kinds["holdout"] <= 110, kinds  # 10 % of the rest
    assert all(e.channel is None for e in found.values() if e.assignment != "treated")
    assert plan.summary.control == kinds["control"]
    assert plan.summary.counts["holdout"] == kinds["control"] + kinds["holdout"]
    # Stable within a period; drawn afresh in the next one.
    again, _ = planned(store, campaign(holdout=0.1), share)
    assert {k for k, e in again.items() if e.assignment == "control"} == {
        k for k, e in found.items() if e.assignment == "control"
    }
    with store.connect() as conn:
        later = Planner(conn, LIBRARY, share, NOW + timedelta(days=31))
        moved = {o.customer_id for o in later.plan(campaign()) if o.assignment == "control"}  # type: ignore[union-attr]
    before = {k for k, e in found.items() if e.assignment == "control"}
    assert 160 <= len(moved) <= 240 and len(moved & before) < 0.5 * len(before)
    # Transactional messages are never held back.
    found, _ = planned(store, campaign(purpose="transactional"), share)
    assert {e.assignment for e in found.values()} == {"treated"}
    assert len(ids) == len(found)


def variant_campaign(**fields: Any) -> Any:
    return campaign(
        name="launch",
        goal="order",
        attribution_window="1d",
        variants=[{"name": "a"}, {"name": "b"}],
        max_per_customer="every 1d",
        **fields,
    )


def arm_results(shop: Shop, ids: list[str], rates: dict[str, float], at: datetime) -> None:
    for n, id in enumerate(ids):
        variant = "a" if n % 2 == 0 else "b"
        shop.message(id, "launch", at=at - timedelta(minutes=n % 50), variant=variant)
        if (n // 2) % 100 < rates[variant] * 100:
            shop.event(id, "order", at + timedelta(hours=3), value=30.0)


def test_variants_are_allocated_by_thompson_sampling_on_closed_results(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 150)
    arm_results(shop, ids, {"a": 0.30, "b": 0.10}, NOW - 3 * DAY)
    shop.write(store)
    found, plan = planned(store, variant_campaign())
    allocation = plan.learner.allocation
    assert allocation.best["a"] > 0.95 and allocation.winner is None  # 75 sends each: < 100
    variants = Counter(e.variant for e in found.values())
    assert variants["a"] >= 0.9 * len(found)
    for entry in found.values():
        assert entry.variant_probability == pytest.approx(allocation.weights[entry.variant])
    assert "testing" in dict(plan.explanations["c000"])["holdout"]


def test_results_inside_their_attribution_window_do_not_count_yet(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 200)
    arm_results(shop, ids, {"a": 0.30, "b": 0.10}, NOW - timedelta(hours=6))
    shop.write(store)
    _, plan = planned(store, variant_campaign())
    assert [a.sends for a in plan.learner.allocation.arms] == [0, 0]
    assert plan.learner.allocation.weights == pytest.approx({"a": 0.5, "b": 0.5}, abs=0.02)


def test_a_clear_winner_gets_everyone_and_fixed_keeps_the_weights(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 1200)
    arm_results(shop, ids, {"a": 0.40, "b": 0.05}, NOW - 3 * DAY)
    shop.write(store)
    found, plan = planned(store, variant_campaign())
    assert plan.learner.allocation.winner == "a"
    assert {e.variant for e in found.values()} == {"a"}
    assert {e.variant_probability for e in found.values()} == {1.0}
    found, plan = planned(store, variant_campaign(allocation="fixed"))
    variants = Counter(e.variant for e in found.values())
    assert 0.4 * len(found) <= variants["a"] <= 0.6 * len(found)
    assert {e.variant_probability for e in found.values()} == {0.5}


def test_goals_of_reads_each_campaigns_goal() -> None:
    goals = goals_of({"launch": variant_campaign(), "plain": campaign()})
    assert goals["launch"] == Goal("order", timedelta(days=1))
    assert goals["plain"].event is None


def test_the_report_shows_the_posterior_per_arm_and_the_winner(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 1200)
    arm_results(shop, ids, {"a": 0.40, "b": 0.05}, NOW - 3 * DAY)
    shop.write(store)
    chosen = variant_campaign()
    with store.connect() as conn:
        found = report(conn, {"launch": chosen})
    block = found.campaigns["launch"].block("ab_test")
    assert isinstance(block, AbTest)
    data = block.as_json()
    assert data["winner"] == "a"
    a, b = data["arms"]
    assert (a["sends"], a["conversions"]) == (600, 240)
    assert a["posterior_mean"] == pytest.approx(241 / 602)
    low, high = a["credible_95"]
    assert low < 0.4 < high and high - low < 0.1
    assert a["p_best"] > 0.999 and a["next_share"] == 1.0
    text = "\n".join(block.lines())
    assert "A/B test on order (bandit): winner a" in text and "P(best)" in text
    fixed = variant_campaign(allocation="fixed")
    with store.connect() as conn:
        plain = report(conn, {"launch": fixed})
    assert plain.campaigns["launch"].block("ab_test") is None


def test_a_declared_winner_stays_until_a_new_variant_arrives(store: Store) -> None:
    shop = Shop()
    ids = audience(shop, 400)
    # Close results that alone would keep testing (a 12 %, b 10 % on 200 sends each)…
    arm_results(shop, ids, {"a": 0.12, "b": 0.10}, NOW - 3 * DAY)
    # …but an earlier batch already sent b to everyone.
    shop.message(ids[0], "launch", at=NOW - DAY, variant="b", variant_probability=1.0)
    shop.write(store)
    found, plan = planned(store, variant_campaign())
    allocation = plan.learner.allocation
    assert allocation.winner == "b" and "declared earlier" in allocation.reason
    assert {e.variant for e in found.values()} == {"b"}
    three = variant_campaign().model_copy(
        update={"variants": (*variant_campaign().variants, Variant(name="c"))}
    )
    _, plan = planned(store, three)
    assert plan.learner.allocation.winner is None  # c has no results: test it
    assert plan.learner.allocation.weights["c"] > 0.3
