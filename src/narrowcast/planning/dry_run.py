"""``narrowcast dry-run``: what the worker would do for a campaign, without doing it.

It runs the planner — the same code the worker runs — over the whole
audience, writes nothing to the outbox, and reports the size of the audience
after each stage, the channel and local send-hour distribution, the drop
reasons, and a few rendered sample messages (the customers with the smallest
ids, so the same samples come back every time). ``--customer ID`` explains
every stage for one customer instead.

``write_samples`` turns the samples into files a marketer can open: ``.eml``
for email (built exactly as the SMTP and file adapters build it) and
``.json`` for the other channels, plus ``summary.json``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from narrowcast.campaigns.messages import render_message, segment_keys
from narrowcast.campaigns.model import Campaign
from narrowcast.channels.base import Message
from narrowcast.channels.mime import Sender, build_email
from narrowcast.optimize.trials import Goal
from narrowcast.planning.context import ContextReader
from narrowcast.planning.planner import STAGES, Dropped, Plan, PlanEntry, Planner, Summary
from narrowcast.planning.settings import PlanningSettings
from narrowcast.render.errors import RenderError
from narrowcast.render.links import MessageLinks
from narrowcast.render.renderer import Renderer
from narrowcast.segments.definitions import Definitions
from narrowcast.store import Store


@dataclass
class Sample:
    entry: PlanEntry
    parts: dict[str, Any] | None
    error: str | None = None
    email: str | None = None
    unsubscribe_url: str | None = None


@dataclass
class DryRun:
    campaign: Campaign
    now: datetime
    occurrence: str
    summary: Summary
    samples: list[Sample] = field(default_factory=list)
    explanation: list[tuple[str, str]] | None = None
    customer_id: str | None = None
    learned: list[str] = field(default_factory=list)
    """What the learned choices rest on: the A/B test's state, the segment's best hours."""

    def as_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "campaign": self.campaign.name,
            "at": self.now.isoformat(),
            "occurrence": self.occurrence,
            "stages": s.counts,
            "planned": s.planned,
            "channels": dict(s.channels),
            "local_hours": {f"{h:02d}": n for h, n in sorted(s.local_hours.items())},
            "variants": dict(s.variants),
            "dropped": dict(s.reasons.most_common()),
            "global_control": s.control,
            "learned": self.learned,
            "samples": [
                {
                    "customer_id": x.entry.customer_id,
                    "channel": x.entry.channel,
                    "variant": x.entry.variant,
                    "send_at": x.entry.send_at.isoformat(),
                    "local_time": _local(x.entry),
                    "parts": x.parts,
                    "error": x.error,
                }
                for x in self.samples
            ],
            **(
                {"customer": self.customer_id, "explanation": self.explanation}
                if self.customer_id
                else {}
            ),
        }

    def text(self) -> str:
        s = self.summary
        lines = [
            f"dry-run of {self.campaign.name} as of {self.now:%Y-%m-%d %H:%M} UTC "
            f"({self.occurrence}) — nothing was sent or written"
        ]
        if self.customer_id is not None:
            lines.append(f"customer {self.customer_id}:")
            for stage, note in self.explanation or [("audience", "not in the audience")]:
                lines.append(f"  {stage:12s} {note}")
            lines += [f"  {line}" for line in self.learned]
            return "\n".join(lines)
        labels = {
            "audience": "audience",
            "consent": "after consent",
            "suppression": "after suppression",
            "reentry": "after re-entry",
            "frequency": "after frequency cap",
            "unless": "after unless",
            "holdout": "holdout (control group)",
        }
        for stage in STAGES:
            if stage == "unless" and self.campaign.unless is None:
                continue
            lines.append(f"  {labels[stage]:26s} {s.counts[stage]:>9,}")
            if stage == "holdout" and s.control:
                lines.append(f"  {'  of which global control':26s} {s.control:>9,}")
        lines.append(f"  {'planned':26s} {s.planned:>9,}")
        if s.channels:
            lines.append(
                "channels:  " + ", ".join(f"{c} {n:,}" for c, n in s.channels.most_common())
            )
        if s.local_hours:
            peak = max(s.local_hours.values())
            lines.append("local send hour:")
            for hour in sorted(s.local_hours):
                count = s.local_hours[hour]
                bar = "█" * max(1, round(30 * count / peak))
                lines.append(f"  {hour:02d}:00 {count:>9,} {bar}")
        if self.campaign.variants or self.campaign.holdout:
            lines.append(
                "variants:  " + ", ".join(f"{v} {n:,}" for v, n in sorted(s.variants.items()))
            )
        if self.learned:
            lines.append("learned:")
            lines += [f"  {line}" for line in self.learned]
        if s.reasons:
            lines.append("dropped:")
            for reason, count in s.reasons.most_common(10):
                lines.append(f"  {count:>9,}  {reason}")
        for sample in self.samples:
            entry = sample.entry
            lines.append(
                f"\n--- {entry.customer_id} · {entry.channel}"
                f"{' · ' + entry.variant if entry.variant else ''} · {_local(entry)}"
            )
            if sample.error:
                lines.append(f"  cannot render: {sample.error}")
            elif sample.parts:
                for name, value in sample.parts.items():
                    if name == "html":
                        continue
                    shown = value if isinstance(value, str) else json.dumps(value, default=str)
                    first = shown.strip().splitlines()[0] if shown and shown.strip() else ""
                    lines.append(f"  {name:10s} {first[:110]}")
        return "\n".join(lines)


def dry_run(
    store: Store,
    campaign: Campaign,
    definitions: Definitions,
    settings: PlanningSettings,
    renderer: Renderer,
    now: datetime,
    *,
    limit: int = 3,
    customer_id: str | None = None,
    since: datetime | None = None,
    goals: Mapping[str, Goal] | None = None,
) -> DryRun:
    """Plan ``campaign`` as of ``now`` and render ``limit`` samples; writes nothing."""
    now = now.astimezone(UTC)
    with store.connect() as conn:
        planner = Planner(
            conn, definitions, settings, now, explain=customer_id is not None, goals=goals
        )
        start = since or now - timedelta(days=1)
        plan = planner.plan(campaign, since=start, customer_id=customer_id)
        occurrence = f"{campaign.schedule_kind} {getattr(campaign, campaign.schedule_kind)}" + (
            f", triggers since {start:%Y-%m-%d %H:%M} UTC" if campaign.triggered else ""
        )
        kept: list[tuple[tuple[int, ...], PlanEntry]] = []  # the smallest ids, negated
        for outcome in plan:
            if isinstance(outcome, Dropped) or outcome.holdout or limit == 0:
                continue
            item = (_negated(outcome.customer_id), outcome)
            if len(kept) < limit:
                heapq.heappush(kept, item)
            elif item[0] > kept[0][0]:
                heapq.heapreplace(kept, item)
        entries = sorted((entry for _, entry in kept), key=lambda e: e.customer_id)
        result = DryRun(campaign, now, occurrence, plan.summary, customer_id=customer_id)
        result.learned = learned(plan)
        if customer_id is not None:
            result.explanation = plan.explanations.get(customer_id)
        reader = ContextReader(conn, definitions, now)
        ids = [e.customer_id for e in entries]
        rows = reader.customers(ids)
        kinds = {(e.channel or "", e.variant, rows[e.customer_id].get("locale")) for e in entries}
        segments = reader.segments(ids, campaign.segment, segment_keys(renderer, campaign, kinds))
        for entry in entries:
            customer = rows[entry.customer_id]
            assert entry.channel is not None
            try:
                parts = render_message(
                    renderer,
                    campaign,
                    entry.channel,
                    customer,
                    variant=entry.variant,
                    segment=segments[entry.customer_id],
                    outbox_id=None,
                )
            except RenderError as exc:
                result.samples.append(Sample(entry, None, str(exc.message), customer.get("email")))
                continue
            links = MessageLinks(
                renderer.links, entry.customer_id, entry.channel, None, campaign.purpose
            )
            result.samples.append(
                Sample(entry, parts, None, customer.get("email"), links.unsubscribe)
            )
    return result


def write_samples(result: DryRun, folder: Path, sender: Sender) -> list[Path]:
    """Each sample as a file in ``folder`` (``.eml`` or ``.json``), and ``summary.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, sample in enumerate(result.samples, start=1):
        entry = sample.entry
        stem = f"{number:02d}-{_safe(entry.customer_id)}-{entry.channel}"
        if sample.parts is None:
            path = folder / f"{stem}.error.txt"
            path.write_text(sample.error or "", encoding="utf-8")
        elif entry.channel == "email" and sample.email:
            message = Message(
                outbox_id=-number,
                channel="email",
                customer_id=entry.customer_id,
                to=sample.email,
                parts=sample.parts,
                campaign=result.campaign.name,
                variant=entry.variant,
                locale=entry.locale,
                unsubscribe_url=sample.unsubscribe_url,
            )
            path = folder / f"{stem}.eml"
            path.write_bytes(bytes(build_email(message, sender)))
        else:
            path = folder / f"{stem}.json"
            payload = {
                "customer_id": entry.customer_id,
                "channel": entry.channel,
                "variant": entry.variant,
                "send_at": entry.send_at.isoformat(),
                "parts": sample.parts,
            }
            path.write_text(
                json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
            )
        written.append(path)
    summary = folder / "summary.json"
    summary.write_text(
        json.dumps(result.as_json(), indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    written.append(summary)
    return written


def _local(entry: PlanEntry) -> str:
    from zoneinfo import ZoneInfo

    local = entry.send_at.astimezone(ZoneInfo(entry.timezone))
    return f"{local:%Y-%m-%d %H:%M} {entry.timezone}"


def _negated(text: str) -> tuple[int, ...]:
    """A key ordering strings in reverse, so a min-heap keeps the smallest ones."""
    return tuple(-ord(ch) for ch in text) + (1,)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def learned(plan: Plan) -> list[str]:
    """One line per learned decision of the plan: what the models say."""
    lines = []
    learner = plan.learner
    allocation = learner.allocation
    if allocation is not None and allocation.adaptive:
        arms = ", ".join(
            f"{a.name} {a.conversions:,}/{a.sends:,} P(best) {allocation.best.get(a.name, 0):.2f}"
            for a in allocation.arms
        )
        lines.append(f"A/B (goal {plan.campaign.goal}): {allocation.reason}; {arms}")
    if learner.hours is not None:
        curve = learner.hours.curve()
        top = sorted(range(24), key=lambda h: -curve[h])[:3]
        if learner.hours.has_data:
            best = ", ".join(f"{h:02d}:00 {curve[h]:.2%}" for h in top)
            lines.append(f"send time: segment response per message sent, best hours {best}")
        else:
            lines.append("send time: no results yet — the default hour, with exploration")
    if learner.channels is not None:
        model = learner.channels
        if model.has_data:
            rates = ", ".join(
                f"{ch} {model.segment.mean[i]:.2%} (≈{model.segment_sends[i]:.0f} sends)"
                for i, ch in enumerate(model.log.channels)
            )
            lines.append(f"channel: segment response per message sent: {rates}")
        else:
            lines.append("channel: no results yet — channel_order, with exploration")
    return lines
