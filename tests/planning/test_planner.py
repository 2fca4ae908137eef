"""The planner, stage by stage, on a shop written into SQLite and PostgreSQL.

Each test builds the few customers it needs (consents, tokens, sessions, past
messages) and checks the outcome per customer and the stage counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert

from narrowcast.campaigns import Campaign
from narrowcast.planning import Dropped, PlanEntry, Planner, PlanningSettings
from narrowcast.planning.settings import ControlSettings, FrequencySettings
from narrowcast.segments.definitions import Definitions, SegmentDefinition, load_definitions
from narrowcast.store import Store
from narrowcast.store.schema import (
    campaign_runs,
    consents,
    customers,
    device_tokens,
    events,
    outbox,
    segment_evaluations,
    segment_transitions,
    suppressions,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday; 11:00 in Madrid
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LIBRARY = load_definitions(Path("/nonexistent/segments.toml"))
SETTINGS = PlanningSettings(control=ControlSettings(share=0))
"""The planner's defaults without the global control group (tested on its own below)."""


class Shop:
    """Rows to insert, built per customer."""

    def __init__(self) -> None:
        self.rows: dict[Any, list[dict[str, Any]]] = {
            t: [] for t in (customers, consents, suppressions, device_tokens, events)
        }
        self.sent: list[dict[str, Any]] = []

    def customer(
        self,
        id: str,
        *,
        email: str | None = None,
        timezone: str | None = "Europe/Madrid",
        email_consent: bool | None = None,
        push_consent: bool | None = None,
        token: bool = False,
        app_session: timedelta | None = None,
        web_session: timedelta | None = None,
        country: str = "ES",
        purpose: str = "marketing",
    ) -> Shop:
        self.rows[customers].append(
            {
                "id": id,
                "email": email,
                "timezone": timezone,
                "locale": "es-ES",
                "country": country,
                "customer_type": "individual",
                "created_at": NOW - 100 * DAY,
                "updated_at": NOW - 100 * DAY,
                "attributes": {},
            }
        )
        for channel, granted in (("email", email_consent), ("push", push_consent)):
            if granted is not None:
                self.rows[consents].append(
                    {
                        "customer_id": id,
                        "channel": channel,
                        "purpose": purpose,
                        "granted": granted,
                        "source": "test",
                        "updated_at": NOW - 10 * DAY,
                    }
                )
        if token:
            self.rows[device_tokens].append(
                {
                    "customer_id": id,
                    "platform": "ios",
                    "token": f"tok-{id}",
                    "created_at": NOW - 10 * DAY,
                    "last_seen_at": NOW - DAY,
                }
            )
        for ago, device in ((app_session, "ios"), (web_session, "web-desktop")):
            if ago is not None:
                self.event(id, "session_start", NOW - ago, device=device)
        return self

    def event(self, id: str, kind: str, ts: datetime, **properties: Any) -> Shop:
        self.rows[events].append(
            {
                "customer_id": id,
                "type": kind,
                "ts": ts,
                "value": properties.get("value"),
                "properties": properties,
            }
        )
        return self

    def suppress(self, address: str, reason: str = "unsubscribed") -> Shop:
        self.rows[suppressions].append(
            {
                "channel": "email",
                "address": address,
                "reason": reason,
                "source": "test",
                "created_at": NOW - DAY,
            }
        )
        return self

    def message(
        self,
        id: str,
        campaign: str,
        *,
        at: datetime,
        state: str = "sent",
        priority: int = 0,
        purpose: str = "marketing",
        channel: str = "email",
        variant: str | None = None,
        variant_probability: float | None = None,
    ) -> Shop:
        self.sent.append(
            {
                "variant": variant,
                "variant_probability": variant_probability,
                "assignment": "holdout" if state == "holdout" else "treated",
                "campaign": campaign,
                "customer_id": id,
                "dedupe_key": f"{campaign}|{at.isoformat()}|{id}",
                "channel": channel,
                "purpose": purpose,
                "priority": priority,
                "state": state,
                "send_at": at,
                "sent_at": at if state == "sent" else None,
                "expires_at": at + DAY,
                "created_at": at,
                "updated_at": at,
            }
        )
        return self

    def write(self, store: Store) -> None:
        with store.begin() as conn:
            for table, rows in self.rows.items():
                if rows:
                    conn.execute(insert(table), rows)
            if self.sent:
                run = conn.execute(
                    insert(campaign_runs)
                    .values(
                        campaign="earlier",
                        key="k",
                        kind="manual",
                        occurrence=NOW,
                        state="planned",
                        created_at=NOW,
                    )
                    .returning(campaign_runs.c.id)
                ).scalar_one()
                conn.execute(insert(outbox), [{**row, "run_id": run} for row in self.sent])


def campaign(**fields: Any) -> Campaign:
    base: dict[str, Any] = {"name": "spring", "where": "True", "every": "1d"}
    return Campaign.model_validate({**base, **fields})


def plan(
    store: Store,
    chosen: Campaign,
    settings: PlanningSettings | None = None,
    definitions: Definitions = LIBRARY,
    **options: Any,
) -> tuple[dict[str, PlanEntry | Dropped], Any]:
    with store.connect() as conn:
        planner = Planner(conn, definitions, settings or SETTINGS, NOW, explain=True)
        result = planner.plan(chosen, **options)
        outcomes = {o.customer_id: o for o in result}
    return outcomes, result


def dropped(outcomes: dict[str, PlanEntry | Dropped]) -> dict[str, str]:
    return {k: v.stage for k, v in outcomes.items() if isinstance(v, Dropped)}


def entries(outcomes: dict[str, PlanEntry | Dropped]) -> dict[str, PlanEntry]:
    return {k: v for k, v in outcomes.items() if isinstance(v, PlanEntry)}


def test_consent_and_suppression_stages(store: Store) -> None:
    shop = Shop()
    shop.customer("granted", email="a@x.es", email_consent=True)
    shop.customer("refused", email="b@x.es", email_consent=False)
    shop.customer("never_asked", email="c@x.es")
    shop.customer("no_email", email_consent=True)
    shop.customer("suppressed", email="Sup@X.es", email_consent=True).suppress("sup@x.es")
    shop.customer("push_only", push_consent=True, token=True)
    shop.customer("token_no_consent", token=True, push_consent=False)
    shop.write(store)
    outcomes, result = plan(store, campaign(channel=["email", "push"]))
    assert set(entries(outcomes)) == {"granted", "push_only"}
    assert entries(outcomes)["push_only"].channel == "push"
    assert dropped(outcomes) == {
        "refused": "consent",
        "never_asked": "consent",
        "no_email": "consent",
        "suppressed": "suppression",
        "token_no_consent": "consent",
    }
    counts = result.summary.counts
    assert (counts["audience"], counts["consent"], counts["suppression"]) == (7, 3, 2)
    assert (
        result.summary.reasons["consent: no usable channel (email: no consent, push: unreachable)"]
        == 2
    )


def test_transactional_needs_no_marketing_consent_and_ignores_unsubscribes(store: Store) -> None:
    shop = Shop()
    shop.customer("never_asked", email="c@x.es")
    shop.customer("unsubscribed", email="u@x.es").suppress("u@x.es", "unsubscribed")
    shop.customer("bounced", email="b@x.es").suppress("b@x.es", "hard_bounce")
    shop.customer("refused", email="r@x.es", email_consent=False, purpose="transactional")
    shop.write(store)
    outcomes, _ = plan(store, campaign(purpose="transactional"))
    assert set(entries(outcomes)) == {"never_asked", "unsubscribed"}
    assert dropped(outcomes) == {"bounced": "suppression", "refused": "consent"}


def test_in_app_and_web_need_a_recent_session(store: Store) -> None:
    shop = Shop()
    shop.customer("app_user", app_session=2 * DAY)
    shop.customer("old_app_user", app_session=40 * DAY)
    shop.customer("browser", web_session=DAY)
    shop.write(store)
    outcomes, _ = plan(store, campaign(channel=["in_app", "web"]))
    assert {k: e.channel for k, e in entries(outcomes).items()} == {
        "app_user": "in_app",
        "browser": "web",
    }
    assert dropped(outcomes) == {"old_app_user": "consent"}


def test_reentry_once_or_every_period(store: Store) -> None:
    shop = Shop()
    for id in ("fresh", "week_ago", "month_ago", "failed_before"):
        shop.customer(id, email=f"{id}@x.es", email_consent=True)
    shop.message("week_ago", "spring", at=NOW - 7 * DAY)
    shop.message("month_ago", "spring", at=NOW - 31 * DAY)
    shop.message("failed_before", "spring", at=NOW - DAY, state="failed")
    shop.message("fresh", "another", at=NOW - 3 * DAY)
    shop.write(store)
    once, _ = plan(store, campaign(max_per_customer="once"))
    assert dropped(once) == {"week_ago": "reentry", "month_ago": "reentry"}
    monthly, _ = plan(store, campaign(max_per_customer="every 30d"))
    assert dropped(monthly) == {"week_ago": "reentry"}


def test_frequency_caps_count_sent_and_higher_priority_pending(store: Store) -> None:
    shop = Shop()
    for id in ("free", "two_today", "five_this_week", "low_priority_pending", "high_pending"):
        shop.customer(id, email=f"{id}@x.es", email_consent=True)
    shop.message("two_today", "a", at=NOW - 2 * HOUR)
    shop.message("two_today", "b", at=NOW - 5 * HOUR)
    for day in range(1, 6):
        shop.message("five_this_week", f"c{day}", at=NOW - day * DAY - HOUR)
    # Pending (planned, not yet sent) later today: only higher-priority ones count.
    shop.message("low_priority_pending", "d", at=NOW + HOUR, state="planned", priority=1)
    shop.message("low_priority_pending", "e", at=NOW + 2 * HOUR, state="planned", priority=1)
    shop.message("high_pending", "f", at=NOW + HOUR, state="planned", priority=9)
    shop.message("high_pending", "g", at=NOW + 2 * HOUR, state="planned", priority=9)
    # Transactional messages never count.
    shop.message("free", "receipt1", at=NOW - HOUR, purpose="transactional")
    shop.message("free", "receipt2", at=NOW - HOUR, purpose="transactional", channel="push")
    shop.write(store)
    outcomes, result = plan(store, campaign(priority=5))
    assert dropped(outcomes) == {
        "two_today": "frequency",
        "five_this_week": "frequency",
        "high_pending": "frequency",
    }
    assert "frequency: 2 marketing messages in a day (cap 2)" in result.summary.reasons
    per_channel = SETTINGS.model_copy(
        update={"frequency": FrequencySettings(per_channel_per_day=1)}
    )
    outcomes, _ = plan(store, campaign(channel=["email", "push"]), per_channel)
    assert dropped(outcomes)["two_today"] == "frequency"
    transactional, _ = plan(store, campaign(purpose="transactional"))
    assert dropped(transactional) == {}


def test_holdout_and_variants_are_stable_and_weighted(store: Store) -> None:
    shop = Shop()
    for n in range(400):
        shop.customer(f"c{n:03d}", email=f"c{n}@x.es", email_consent=True)
    shop.write(store)
    chosen = campaign(
        holdout=0.2, variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]
    )
    first, result = plan(store, chosen)
    again, _ = plan(store, chosen)
    assert {k: (v.holdout, v.variant) for k, v in entries(first).items()} == {
        k: (v.holdout, v.variant) for k, v in entries(again).items()
    }
    holdout = sum(1 for v in entries(first).values() if v.holdout)
    assert 50 <= holdout <= 110  # 20 % of 400, give or take chance
    variants = Counter(v.variant for v in entries(first).values() if not v.holdout)
    assert 2.0 <= variants["b"] / variants["a"] <= 4.5
    assert all(v.channel is None for v in entries(first).values() if v.holdout)
    assert result.summary.counts["holdout"] == holdout
    assert result.summary.planned == 400 - holdout


def test_send_time_fixed_local_window_and_quiet_hours(store: Store) -> None:
    shop = Shop()
    shop.customer("madrid", email="m@x.es", email_consent=True, timezone="Europe/Madrid")
    shop.customer("new_york", email="n@x.es", email_consent=True, timezone="America/New_York")
    shop.customer("unknown_zone", email="u@x.es", email_consent=True, timezone=None)
    shop.write(store)
    fixed, _ = plan(store, campaign(send_time="09:30"))
    times = {k: e.send_at for k, e in entries(fixed).items()}
    # 09:30 today has passed in Madrid (it is 11:00): tomorrow; New York is at 05:00: today.
    assert times["madrid"] == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    assert times["new_york"] == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert times["unknown_zone"] == datetime(2026, 3, 3, 9, 30, tzinfo=UTC)  # default UTC
    now_in_window, _ = plan(store, campaign(window="09:00-21:00"))
    sends = {k: e.send_at for k, e in entries(now_in_window).items()}
    assert sends["madrid"] == NOW  # 11:00 local, inside
    assert sends["new_york"] == datetime(2026, 3, 2, 14, tzinfo=UTC)  # waits for 09:00 local
    # Quiet hours (21:00-08:00 by default) only hold marketing.
    late = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 23:00 Madrid
    with store.connect() as conn:
        planner = Planner(conn, LIBRARY, SETTINGS, late)
        marketing = {o.customer_id: o for o in planner.plan(campaign())}
        receipts = {o.customer_id: o for o in planner.plan(campaign(purpose="transactional"))}
        quietless = Planner(conn, LIBRARY, SETTINGS.model_copy(update={"quiet_hours": ""}), late)
        unheld = {o.customer_id: o for o in quietless.plan(campaign())}
    assert marketing["madrid"].send_at == datetime(2026, 3, 3, 7, tzinfo=UTC)  # type: ignore[union-attr]
    assert receipts["madrid"].send_at == late  # type: ignore[union-attr]
    assert unheld["madrid"].send_at == late  # type: ignore[union-attr]  # quiet_hours = ""


def test_expiry_is_the_window_end_or_the_campaign_deadline(store: Store) -> None:
    Shop().customer("madrid", email="m@x.es", email_consent=True).write(store)
    windowed, _ = plan(store, campaign(window="09:00-13:00", expires="6h"))
    entry = entries(windowed)["madrid"]
    assert entry.expires_at == datetime(2026, 3, 2, 12, tzinfo=UTC)  # 13:00 local
    plain, _ = plan(store, campaign(expires="6h"))
    assert entries(plain)["madrid"].expires_at == NOW + 6 * HOUR


def test_exclusions(store: Store) -> None:
    shop = Shop()
    shop.customer("spanish", email="s@x.es", email_consent=True, country="ES")
    shop.customer("portuguese", email="p@x.pt", email_consent=True, country="PT")
    shop.write(store)
    definitions = Definitions(
        {"pt": SegmentDefinition("pt", "country == 'PT'", "", "t:1", builtin=False)}
    )
    outcomes, _ = plan(store, campaign(exclude=["pt"]), definitions=definitions)
    assert set(outcomes) == {"spanish"}


def test_event_triggers_with_delay_and_unless(store: Store) -> None:
    shop = Shop()
    for id in ("waiting", "bought", "too_old", "not_yet_due", "never"):
        shop.customer(id, email=f"{id}@x.es", email_consent=True)
    shop.event("waiting", "cart_add", NOW - 2 * HOUR)
    shop.event("bought", "cart_add", NOW - 2 * HOUR)
    shop.event("bought", "order", NOW - 90 * timedelta(minutes=1), value=20.0)
    shop.event("too_old", "cart_add", NOW - 3 * DAY)
    shop.event("not_yet_due", "cart_add", NOW - 30 * timedelta(minutes=1))
    shop.write(store)
    chosen = campaign(
        every=None,
        where=None,
        on_event="cart_add",
        delay="1h",
        unless="ever('order', within='2h')",
    )
    outcomes, result = plan(store, chosen, since=NOW - DAY)
    assert set(outcomes) == {"waiting", "bought", "not_yet_due"}
    assert dropped(outcomes) == {"bought": "unless"}
    found = entries(outcomes)
    assert found["waiting"].send_at == NOW  # due an hour ago: now
    assert found["not_yet_due"].send_at == NOW + 30 * timedelta(minutes=1)
    assert found["waiting"].trigger_at == NOW - 2 * HOUR
    assert found["waiting"].dedupe_key.startswith("spring|on_event:")
    assert result.summary.counts["unless"] == 2


def test_segment_entry_triggers(store: Store) -> None:
    shop = Shop()
    for id in ("entered", "entered_long_ago", "never"):
        shop.customer(id, email=f"{id}@x.es", email_consent=True)
    shop.write(store)
    with store.begin() as conn:
        _transitions(conn, [("entered", NOW - HOUR), ("entered_long_ago", NOW - 5 * DAY)])
    chosen = campaign(every=None, where=None, on_enter="vip")
    outcomes, _ = plan(store, chosen, since=NOW - DAY)
    assert set(outcomes) == {"entered"}


def _transitions(conn: Connection, rows: Iterable[tuple[str, datetime]]) -> None:
    evaluation = conn.execute(
        insert(segment_evaluations)
        .values(segment="vip", evaluated_at=NOW, rule_hash="x", size=1, entered=1, exited=0)
        .returning(segment_evaluations.c.id)
    ).scalar_one()
    conn.execute(
        insert(segment_transitions),
        [
            {
                "segment": "vip",
                "customer_id": c,
                "change": "enter",
                "at": at,
                "evaluation_id": evaluation,
            }
            for c, at in rows
        ],
    )


def test_one_customer_explained(store: Store) -> None:
    Shop().customer("madrid", email="m@x.es", email_consent=True).write(store)
    outcomes, result = plan(
        store, campaign(holdout=0.1, window="09:00-21:00"), customer_id="madrid"
    )
    assert set(outcomes) == {"madrid"}
    stages = [stage for stage, _ in result.explanations["madrid"]]
    assert stages[:4] == ["audience", "consent", "suppression", "frequency"]
    notes = dict(result.explanations["madrid"])
    assert notes["consent"].startswith("email granted (ok)")
    assert "Europe/Madrid" in notes["send time"]


def test_app_sessions_by_platform_or_device_and_quiet_hours_spare_in_app(store: Store) -> None:
    shop = Shop()
    shop.customer("sdk_platform").event(
        "sdk_platform", "session_start", NOW - DAY, platform="android", device="mobile"
    )
    shop.customer("sdk_device").event("sdk_device", "session_start", NOW - DAY, device="ios")
    shop.customer("website").event(
        "website", "session_start", NOW - DAY, platform="web", device="desktop"
    )
    shop.write(store)
    late = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 23:00 in Madrid: quiet hours
    with store.connect() as conn:
        planner = Planner(conn, LIBRARY, SETTINGS, late)
        found = {o.customer_id: o for o in planner.plan(campaign(channel=["in_app", "web"]))}
    assert {k: v.channel for k, v in found.items()} == {  # type: ignore[union-attr]
        "sdk_platform": "in_app",
        "sdk_device": "in_app",
        "website": "web",
    }
    # In-app and web messages wait to be seen: quiet hours do not hold them.
    assert all(v.send_at == late for v in found.values())  # type: ignore[union-attr]
