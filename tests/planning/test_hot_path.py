"""The planner's hot path decides exactly what the explained path decides.

``Planner.decide`` reads rows by position, caches send times per zone and
tallies the summary per batch; with ``explain=True`` it also builds ``Facts``
and notes and works every send time out again. A varied shop planned both
ways, in batches smaller than the audience, must give the same outcomes, in
the same order, and the same summary (down to the order of its counters, which
``dry-run`` prints).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from narrowcast.campaigns import Campaign
from narrowcast.planning import Planner, PlanningSettings
from narrowcast.planning.settings import FrequencySettings
from narrowcast.store import Store
from tests.planning.test_planner import DAY, HOUR, LIBRARY, NOW, Shop, campaign

ZONES = ("Europe/Madrid", "America/New_York", "Asia/Kolkata", None, "Not/AZone", "UTC")


def varied_shop(store: Store, customers: int = 120) -> None:
    pick = random.Random(4).choice
    shop = Shop()
    for n in range(customers):
        id = f"c{n:03d}"
        email = pick([None, f"{id}@x.es", f"{id.upper()}@X.es"])
        shop.customer(
            id,
            email=email,
            timezone=pick(ZONES),
            email_consent=pick([None, True, True, False]),
            push_consent=pick([None, True, False]),
            token=pick([True, False]),
            app_session=pick([None, 2 * DAY, 40 * DAY]),
            web_session=pick([None, DAY]),
        )
        if email is not None and pick([False, False, False, True]):
            shop.suppress(email.lower(), pick(["unsubscribed", "hard_bounce"]))
        for ago in (2 * HOUR, 3 * HOUR, 3 * DAY, 40 * DAY):  # one dedupe key each
            if pick([True, False, False]):
                shop.message(
                    id, pick(["spring", "other"]), at=NOW - ago, channel=pick(["email", "push"])
                )
        if pick([True, False]):
            shop.event(id, "cart_add", NOW - pick([HOUR, 3 * HOUR, 30 * HOUR]))
        if pick([True, False, False]):
            shop.event(id, "order", NOW - pick([HOUR, 5 * DAY]), value=10.0)
        if pick([True, False]):
            shop.event(id, "message_sent", NOW - 3 * DAY, channel="email", local_hour="18")
            shop.event(id, "message_clicked", NOW - 3 * DAY + HOUR, channel="email")
    shop.write(store)


def outcomes(
    store: Store, chosen: Campaign, settings: PlanningSettings, *, explain: bool
) -> tuple[list[Any], dict[str, Any]]:
    with store.connect() as conn:
        planner = Planner(conn, LIBRARY, settings, NOW, explain=explain)
        plan = planner.plan(chosen)
        found = list(plan)
    s = plan.summary
    summary = {
        "counts": list(s.counts.items()),
        "planned": s.planned,
        "reasons": list(s.reasons.items()),
        "channels": list(s.channels.items()),
        "local_hours": list(s.local_hours.items()),
        "variants": list(s.variants.items()),
    }
    return found, summary


CAMPAIGNS = {
    "ab_holdout_fixed_time": {
        "channel": ["email", "push"],
        "send_time": "10:00",
        "window": "09:00-20:00",
        "holdout": 0.2,
        "variants": [{"name": "a"}, {"name": "b", "weight": 2}],
    },
    "auto_channel_and_hour": {"channel": "auto", "send_time": "auto", "window": "09:00-20:00"},
    "in_app_and_web_now": {"channel": ["in_app", "web", "webhook"]},
    "transactional": {"purpose": "transactional", "channel": ["email", "push"]},
    "once": {"max_per_customer": "once", "variants": [{"name": "x"}, {"name": "y"}]},
    "on_event_with_delay_and_unless": {
        "every": None,
        "where": None,
        "on_event": "cart_add",
        "delay": "2h",
        "unless": "ever('order', within='2h')",
        "channel": ["push", "email"],
        "window": "08:00-22:00",
    },
}


@pytest.mark.parametrize("name", list(CAMPAIGNS))
def test_hot_path_matches_the_explained_path(store: Store, name: str) -> None:
    varied_shop(store)
    chosen = campaign(**CAMPAIGNS[name])
    frequency = FrequencySettings(per_day=3, per_channel_per_day=1, per_channel_per_week=2)
    for settings in (
        PlanningSettings(batch_size=7),
        PlanningSettings(batch_size=7, frequency=frequency, quiet_hours=""),
    ):
        fast, fast_summary = outcomes(store, chosen, settings, explain=False)
        slow, slow_summary = outcomes(store, chosen, settings, explain=True)
        assert fast == slow
        assert fast_summary == slow_summary
        assert fast_summary["counts"][0] == ("audience", len(fast))
