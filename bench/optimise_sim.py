"""Does the learning beat fixed choices? A simulator with a hidden ground truth.

Every simulated customer is drawn from a demo persona (``narrowcast.demo.personas``)
and gets a true probability of responding to a message per local hour and per
channel, which the optimiser never sees: a daily curve peaking at the persona's
active hours (shifted by up to two hours for half the customers: people differ
within a segment), and a channel factor favouring the persona's channel (email,
or push for app and web people; a quarter of the customers prefer the other one).

Each round is one simulated day through the real product: the worker (its
planner, outbox, dispatcher and the file adapters) runs hourly ticks under an
injected clock; every message sent draws a response from the truth, which is
fed back as a ``message_clicked`` event with its outbox id, as the HTTP API
would record it. Each round prints, in expected responses per message (the
truth's probabilities, so that luck does not blur the comparison):

* ``fixed`` — everyone at 10:00 local on the campaign's listed channel;
* ``policy`` — what narrowcast chose;
* ``segment oracle`` — the best single hour (or channel) per segment in hindsight;
* ``customer oracle`` — every customer's own best;
* ``gap closed`` = (policy − fixed) / (segment oracle − fixed).

Experiments: ``time`` (one campaign per persona segment, ``send_time = "auto"``
on the listed channel), ``channel`` (``channel = "auto"`` at 10:00), and
``variants`` (three variants on an ``order`` goal; reports the bandit's regret
against always sending the best variant, and a fixed even split's).

    python bench/optimise_sim.py                      # all three, 20 rounds, 3,000 customers
    python bench/optimise_sim.py time --rounds 30 --customers 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from narrowcast.config import load_settings
from narrowcast.demo.personas import PERSONAS
from narrowcast.dispatch.clock import FixedClock
from narrowcast.ingest.customers import import_customers
from narrowcast.ingest.sources import open_source
from narrowcast.segments.sql import json_property
from narrowcast.store import Store
from narrowcast.store.schema import device_tokens, events, outbox
from narrowcast.worker.worker import Worker

CHANNELS = ("email", "push")
ZONES = ("Europe/Madrid", "Europe/London", "America/New_York")
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday; campaigns plan at 06:00 UTC
WINDOW = (8, 21)  # local 08:00-21:00: the campaign window (quiet hours start at 21:00)
ALLOWED = tuple(range(*WINDOW))
FIXED_HOUR = 10
REACHES = {"email": "email", "push": "push", "in_app": "push", "web": "push"}
"""The simulated channel of each persona's own: app and mobile-web people answer push."""
VARIANT_LIFT = {"a": 1.0, "b": 1.25, "c": 0.85}


@dataclass
class Truth:
    """The hidden response probabilities: ``p[customer, channel, local hour]``."""

    ids: list[str]
    persona: list[str]
    zone: list[str]
    listed: list[str]
    """The channel the persona's campaign lists (its own, or email)."""
    p: np.ndarray
    conversion: np.ndarray
    """Base probability of ordering after a message (the variant experiment)."""

    def index(self) -> dict[str, int]:
        return {id: i for i, id in enumerate(self.ids)}


def make_truth(size: int, rng: np.random.Generator) -> Truth:
    weights = np.array([p.weight for p in PERSONAS])
    chosen = rng.choice(len(PERSONAS), size=size, p=weights / weights.sum())
    hours = np.arange(24)
    p = np.zeros((size, len(CHANNELS), 24))
    listed, personas, zones = [], [], []
    for i, k in enumerate(chosen):
        persona = PERSONAS[k]
        shift = int(rng.integers(-2, 3)) if rng.random() < 0.5 else 0
        curve = np.full(24, 0.12)
        for active in persona.hours:
            distance = np.minimum(
                np.abs(hours - (active + shift) % 24), 24 - np.abs(hours - (active + shift) % 24)
            )
            curve += np.exp(-(distance**2) / (2 * 1.3**2))
        curve /= curve.max()
        own = REACHES[persona.channel]
        favourite = own if rng.random() < 0.75 else next(c for c in CHANNELS if c != own)
        factor = {c: 1.0 if c == favourite else float(rng.uniform(0.2, 0.5)) for c in CHANNELS}
        base = float(rng.uniform(0.15, 0.4))
        for c, channel in enumerate(CHANNELS):
            p[i, c] = base * factor[channel] * curve
        listed.append(own)
        personas.append(persona.name)
        zones.append(ZONES[int(rng.integers(len(ZONES)))])
    conversion = rng.uniform(0.05, 0.2, size=size)
    ids = [f"sim{i:05d}" for i in range(size)]
    return Truth(ids, personas, zones, listed, p, conversion)


# --- the shop on disk ------------------------------------------------------------------


def write_shop(
    folder: Path, truth: Truth, experiment: str, learning: str = ""
) -> tuple[Store, Worker, FixedClock]:
    (folder / "campaigns").mkdir()
    (folder / "templates").mkdir()
    (folder / "config.toml").write_text(
        f"""
[database]
url = "sqlite:///{folder / "sim.db"}"

[planning]
channel_order = ["email", "push"]

[planning.learning]
{learning}

[planning.frequency]
per_day = 3
per_week = 21

[channels.providers.file]
directory = "{folder / "outbox"}"
""",
        encoding="utf-8",
    )
    segments = [
        f"[segments.p_{name}]\nwhere = \"persona == '{name}'\"\n"
        for name in sorted(set(truth.persona))
    ]
    (folder / "campaigns" / "segments.toml").write_text("\n".join(segments), encoding="utf-8")
    if experiment == "variants":
        _campaign(folder, "launch", "True", '"email"', '"10:00"', variants=True)
    else:
        for name in sorted(set(truth.persona)):
            listed = truth.listed[truth.persona.index(name)]
            channel = '"auto"' if experiment == "channel" else f'"{listed}"'
            send_time = '"auto"' if experiment == "time" else f'"{FIXED_HOUR:02d}:00"'
            _campaign(folder, f"daily_{name}", f"segment('p_{name}')", channel, send_time)
    with (folder / "customers.jsonl").open("w", encoding="utf-8") as out:
        for i, id in enumerate(truth.ids):
            row = {
                "id": id,
                "email": f"{id}@sim.example",
                "timezone": truth.zone[i],
                "locale": "en-GB",
                "email_consent": True,
                "push_consent": True,
                "persona": truth.persona[i],
            }
            out.write(json.dumps(row) + "\n")
    settings = load_settings(folder / "config.toml", env={"NARROWCAST_LINK_SECRET": "s" * 40})
    store = Store(settings.database.url)
    store.upgrade()
    import_customers(store, open_source(folder / "customers.jsonl"))
    with store.begin() as conn:
        conn.execute(
            insert(device_tokens),
            [
                {
                    "customer_id": id,
                    "platform": "android",
                    "token": f"token-{id}",
                    "created_at": START - timedelta(days=30),
                    "last_seen_at": START - timedelta(days=1),
                }
                for id in truth.ids
            ],
        )
    clock = FixedClock(START)
    return store, Worker(settings, store, clock=clock, root=folder), clock


def _campaign(
    folder: Path, name: str, where: str, channel: str, send_time: str, variants: bool = False
) -> None:
    text = f"""name = "{name}"
where = "{where}"
cron = "0 6 * * *"
channel = {channel}
send_time = {send_time}
window = "{WINDOW[0]:02d}:00-{WINDOW[1]:02d}:00"
max_per_customer = "every 6h"
goal = "order"
attribution_window = "12h"
"""
    templates = folder / "templates" / name
    templates.mkdir()
    if variants:
        text += "holdout = 0.1\n" + "".join(f'\n[[variants]]\nname = "{v}"\n' for v in VARIANT_LIFT)
        for v in VARIANT_LIFT:
            (templates / v).mkdir()
            _templates(templates / v, f"{name} {v}")
    else:
        _templates(templates, name)
    (folder / "campaigns" / f"{name}.toml").write_text(text, encoding="utf-8")


def _templates(folder: Path, title: str) -> None:
    parts = {
        "email.subject.j2": f"{title} for {{{{ customer.id }}}}",
        "email.html.j2": f"<p>{title}</p>",
        "push.title.j2": title,
        "push.body.j2": f"{title} for {{{{ customer.id }}}}",
    }
    for part, text in parts.items():
        (folder / part).write_text(text, encoding="utf-8")


# --- one round --------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    sent: int
    fixed: float
    policy: float
    segment_oracle: float
    customer_oracle: float
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def gap_closed(self) -> float:
        span = self.segment_oracle - self.fixed
        return (self.policy - self.fixed) / span if span > 0 else float("nan")


def run_round(
    number: int,
    worker: Worker,
    clock: FixedClock,
    store: Store,
    truth: Truth,
    rng: np.random.Generator,
    score: Callable[[Truth, list[tuple[int, int, int, str | None]]], Round],
) -> Round:
    started = time.perf_counter()
    day = START + timedelta(days=number - 1)
    for hour in range(24):
        clock.at = day + timedelta(hours=hour)
        worker.tick()
    index = truth.index()
    hour = json_property(events, "local_hour", "text")
    outbox_id = json_property(events, "outbox_id", "number")
    with store.connect() as conn:
        rows = conn.execute(
            select(
                events.c.customer_id,
                outbox_id,
                events.c.ts,
                hour,
                outbox.c.channel,
                outbox.c.variant,
            )
            .join(outbox, outbox.c.id == outbox_id)
            .where(events.c.type == "message_sent", events.c.ts >= day)
            .order_by(events.c.id)
        ).all()
    sent: list[tuple[int, int, int, str | None]] = []
    clicks, orders = [], []
    for customer_id, row_id, ts, local_hour, channel, variant in rows:
        i = index[customer_id]
        c = CHANNELS.index(channel)
        h = int(local_hour)
        sent.append((i, c, h, variant))
        at = ts.astimezone(UTC) + timedelta(minutes=30)
        if variant is not None:
            if rng.random() < truth.conversion[i] * VARIANT_LIFT[variant]:
                orders.append(_event(customer_id, "order", at, f"order:{row_id}", value=40.0))
        elif rng.random() < truth.p[i, c, h]:
            clicks.append(
                _event(
                    customer_id,
                    "message_clicked",
                    at,
                    f"click:{row_id}",
                    outbox_id=int(row_id),
                    channel=channel,
                )
            )
    with store.begin() as conn:
        for batch in (clicks, orders):
            if batch:
                conn.execute(insert(events), batch)
    result = score(truth, sent)
    result.number = number
    result.seconds = time.perf_counter() - started
    return result


def _event(
    customer_id: str,
    kind: str,
    at: datetime,
    event_id: str,
    value: float | None = None,
    **properties: object,
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "type": kind,
        "ts": at,
        "value": value,
        "properties": properties,
    }


def score_time(truth: Truth, sent: list[tuple[int, int, int, str | None]]) -> Round:
    customers = np.array([i for i, *_ in sent])
    listed = np.array([CHANNELS.index(truth.listed[i]) for i in customers])
    policy = np.array([truth.p[i, c, h] for i, c, h, _ in sent])
    on_listed = truth.p[customers, listed][:, list(ALLOWED)]  # (sent, allowed hours)
    fixed = on_listed[:, ALLOWED.index(FIXED_HOUR)]
    personas = np.array([truth.persona[i] for i in customers])
    segment = np.zeros(len(customers))
    for name in set(personas):
        mine = personas == name
        best = int(np.argmax(on_listed[mine].mean(axis=0)))
        segment[mine] = on_listed[mine, best]
    return Round(
        0, len(sent), fixed.mean(), policy.mean(), segment.mean(), on_listed.max(axis=1).mean(), 0.0
    )


def score_channel(truth: Truth, sent: list[tuple[int, int, int, str | None]]) -> Round:
    customers = np.array([i for i, *_ in sent])
    policy = np.array([truth.p[i, c, h] for i, c, h, _ in sent])
    hours = np.array([h for *_, h, _ in sent])  # 10:00, or the next allowed minute
    by_channel = truth.p[customers, :, hours]  # (sent, channels)
    fixed = by_channel[:, CHANNELS.index("email")]
    personas = np.array([truth.persona[i] for i in customers])
    segment = np.zeros(len(customers))
    for name in set(personas):
        mine = personas == name
        best = int(np.argmax(by_channel[mine].mean(axis=0)))
        segment[mine] = by_channel[mine, best]
    return Round(
        0,
        len(sent),
        fixed.mean(),
        policy.mean(),
        segment.mean(),
        by_channel.max(axis=1).mean(),
        0.0,
    )


def score_variants(truth: Truth, sent: list[tuple[int, int, int, str | None]]) -> Round:
    base = np.array([truth.conversion[i] for i, *_ in sent])
    policy = np.array([truth.conversion[i] * VARIANT_LIFT[v or "a"] for i, _, _, v in sent])
    best = base * max(VARIANT_LIFT.values())
    even = base * float(np.mean(list(VARIANT_LIFT.values())))
    shares = {v: sum(1 for *_, x in sent if x == v) / max(len(sent), 1) for v in VARIANT_LIFT}
    return Round(
        0,
        len(sent),
        even.mean(),
        policy.mean(),
        best.mean(),
        best.mean(),
        0.0,
        {f"share {v}": s for v, s in shares.items()},
    )


SCORES = {"time": score_time, "channel": score_channel, "variants": score_variants}


def simulate(experiment: str, rounds: int, size: int, seed: int, learning: str = "") -> list[Round]:
    rng = np.random.default_rng(seed)
    truth = make_truth(size, rng)
    results = []
    with tempfile.TemporaryDirectory(prefix=f"narrowcast-sim-{experiment}-") as tmp:
        store, worker, clock = write_shop(Path(tmp), truth, experiment, learning)
        try:
            for number in range(1, rounds + 1):
                result = run_round(number, worker, clock, store, truth, rng, SCORES[experiment])
                results.append(result)
                _print_round(experiment, result)
        finally:
            store.dispose()
    return results


def _print_round(experiment: str, r: Round) -> None:
    if experiment == "variants":
        shares = " ".join(f"{k} {v:.2f}" for k, v in r.extra.items())
        print(
            f"  round {r.number:>2}  sent {r.sent:>6,}  even split {r.fixed:.4f}  "
            f"bandit {r.policy:.4f}  "
            f"best arm {r.segment_oracle:.4f}  ({shares})  {r.seconds:.1f} s",
            flush=True,
        )
        return
    print(
        f"  round {r.number:>2}  sent {r.sent:>6,}  fixed {r.fixed:.4f}  policy {r.policy:.4f}  "
        f"segment oracle {r.segment_oracle:.4f}  customer oracle {r.customer_oracle:.4f}  "
        f"gap closed {r.gap_closed:+.2f}  {r.seconds:.1f} s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="*", help=f"any of {', '.join(SCORES)} (default all)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--learning",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [planning.learning] setting, as TOML (e.g. customer_prior_strength=20)",
    )
    args = parser.parse_args(argv)
    unknown = [e for e in args.experiments if e not in SCORES]
    if unknown:
        parser.error(f"unknown experiment {', '.join(unknown)}: choose from {', '.join(SCORES)}")
    verdicts = []
    for experiment in args.experiments or list(SCORES):
        print(f"\n{experiment}: {args.customers:,} customers, {args.rounds} rounds (one a day)")
        learning = "\n".join(args.learning)
        results = simulate(experiment, args.rounds, args.customers, args.seed, learning)
        last = results[-1]
        if experiment == "variants":
            regret = sum((r.segment_oracle - r.policy) * r.sent for r in results)
            even = sum((r.segment_oracle - r.fixed) * r.sent for r in results)
            best = sum(r.segment_oracle * r.sent for r in results)
            ratio = regret / even if even else float("nan")
            print(
                "  cumulative expected orders lost vs always the best variant: "
                f"bandit {regret:,.0f}, "
                f"even split {even:,.0f} (of {best:,.0f}); bandit/even regret {ratio:.2f}"
            )
            best_name = max(VARIANT_LIFT, key=VARIANT_LIFT.__getitem__)
            alone = [r.number for r in results if r.extra.get(f"share {best_name}") == 1.0]
            print(
                f"  bandit's expected orders: {1 - regret / best:.1%} of always sending the best "
                f"variant; the winner ({best_name}) went to everyone from round "
                f"{alone[0] if alone else '-'}"
            )
            verdicts.append(
                ("variants: bandit regret ≤ 0.5 × even split's", ratio <= 0.5, f"{ratio:.2f}")
            )
        else:
            tail = results[-5:]
            gap = float(np.mean([r.gap_closed for r in tail]))
            print(
                f"  gap closed in round {last.number}: {last.gap_closed:+.2f}; "
                f"mean of the last {len(tail)} rounds: {gap:+.2f}"
            )
            verdicts.append(
                (
                    f"{experiment}: gap closed ≥ 0.5 after {args.rounds} rounds",
                    gap >= 0.5,
                    f"{gap:+.2f}",
                )
            )
    print()
    for name, ok, figure in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
