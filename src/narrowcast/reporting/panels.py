"""The report's panels: a chart, its text alternative and the table of numbers behind it.

``build_sections`` reads the store (``data``), draws each chart (``charts``)
and returns sections of ``Panel``s that both the HTML report file and the
dashboard render. A panel always carries a ``Table`` with the exact numbers
it draws — the chart's accessible fallback, and what tests compare with the
store — and, when there is nothing to draw yet, an ``empty`` message instead
of an SVG (never an empty axis).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from matplotlib.figure import Figure
from sqlalchemy import Connection

from narrowcast.campaigns.model import Campaign
from narrowcast.planning.settings import PlanningSettings
from narrowcast.reporting import charts, data
from narrowcast.reporting.curves import (
    EMPIRICAL_LABEL,
    MODEL_LABEL,
    model_curve,
    overall_rate,
    smoothed_curve,
)
from narrowcast.segments.membership import NONE, Flow
from narrowcast.worker.report import Comparison

MAX_LINES = 10
"""Segments drawn in the sizes chart (the largest now); the table lists every one."""
MAX_FLOW = 14
"""Segments in the flow heat map (those with the most movement), besides '(none)'."""
MAX_HOUR_PANELS = 8
"""Segments with a send-time chart (the most messages sent)."""


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Panel:
    key: str
    """Unique on the page: the HTML id of the panel and the prefix of its SVG ids."""
    title: str
    description: str
    """The chart in words: what it shows and its most important numbers."""
    table: Table
    svg: str | None = None
    empty: str | None = None
    """Shown instead of a chart when there is no data yet."""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    panels: list[Panel] = field(default_factory=list)


def _panel(key: str, title: str, description: str, table: Table, figure: Figure | None) -> Panel:
    svg = None if figure is None else charts.to_svg(figure, key, title, description)
    return Panel(key, title, description, table, svg)


def _empty(key: str, title: str, message: str, columns: tuple[str, ...]) -> Panel:
    return Panel(key, title, message, Table(columns), empty=message)


def _pct(value: float) -> str:
    return f"{value:.1%}"


def build_sections(
    conn: Connection,
    campaigns: Mapping[str, Campaign],
    *,
    since: datetime | None = None,
    only: str | None = None,
    planning: PlanningSettings | None = None,
    now: datetime | None = None,
) -> list[Section]:
    """Every section of the report, read from ``conn`` (``only``: one campaign's charts).

    ``planning`` is what the send-time model learns with (default: the defaults) and
    ``now`` the instant it learns as of (default: the current time).
    """
    planning = planning or PlanningSettings()
    now = now or datetime.now(UTC)

    def curve(hourly: data.HourlyResponse) -> list[float] | None:
        return model_curve(conn, hourly, campaigns, planning, now)

    return [
        Section(
            "segments",
            "Segments",
            "How many customers each segment holds at every snapshot, and how customers "
            "moved between segments.",
            [segment_sizes_panel(conn, since), flow_panel(data.segment_flow(conn, since))],
        ),
        Section(
            "send-time",
            "Response by local send hour",
            "Per audience segment: responses (a click on the message, or the campaign's goal "
            "within its attribution window) per message sent, by the customer's local hour "
            "of sending. Opens do not count.",
            send_time_panels(
                data.hourly_response(conn, campaigns, since, only),
                planning.learning.prior_strength,
                curve,
            ),
        ),
        Section(
            "channels",
            "Channels",
            "Messages sent per channel, and the share delivered, opened (machine opens "
            "excluded) and clicked.",
            channel_panels(data.channel_engagement(conn, since, only)),
        ),
        Section(
            "variants",
            "Variant allocation",
            "Messages planned per day for each arm of the campaigns with A/B variants or "
            "a holdout group.",
            variant_panels(data.variant_allocation(conn, since, only)),
        ),
        Section(
            "uplift",
            "Uplift",
            "Conversion of everyone assigned a message minus that of the holdout group, "
            "with its 95 % interval. An interval that crosses zero is no evidence of an effect.",
            [uplift_panel(data.uplift(conn, campaigns, since, only))],
        ),
    ]


def segment_sizes_panel(conn: Connection, since: datetime | None) -> Panel:
    key, title = "segment-sizes", "Segment sizes over time"
    columns = ("segment", "snapshot (UTC)", "customers")
    sizes = data.segment_sizes(conn, since)
    if not sizes:
        return _empty(
            key,
            title,
            "no segment snapshot has been taken "
            "(`narrowcast segments snapshot`, or the worker's hourly snapshot).",
            columns,
        )
    rows = tuple(
        (segment, f"{at:%Y-%m-%d %H:%M}", str(size))
        for segment, points in sorted(sizes.items())
        for at, size in points
    )
    largest = sorted(sizes, key=lambda s: (-sizes[s][-1][1], s))[:MAX_LINES]
    shown = {s: [(at, float(n)) for at, n in sizes[s]] for s in largest}
    latest = ", ".join(f"{s} {sizes[s][-1][1]:,}" for s in largest)
    description = (
        f"Customers per segment at each of {len({at for p in sizes.values() for at, _ in p})} "
        f"snapshots; the {len(largest)} largest segments are drawn. Latest sizes: {latest}."
    )
    figure = charts.lines_over_time(shown, title=title, xlabel="snapshot (UTC)", ylabel="customers")
    return _panel(key, title, description, Table(columns, rows), figure)


def flow_panel(flow: Flow | None) -> Panel:
    key, title = "segment-flow", "Segment flow"
    columns = ("from", "to", "customers")
    if flow is None or not flow.moved:
        message = (
            "the flow needs two segment snapshots at different instants."
            if flow is None
            else f"Nobody moved between segments from {flow.since:%Y-%m-%d %H:%M} to "
            f"{flow.until:%Y-%m-%d %H:%M} UTC."
        )
        return _empty(key, title, message, columns)
    volume: dict[str, int] = {}
    for (a, b), n in flow.moved.items():
        volume[a] = volume.get(a, 0) + n
        volume[b] = volume.get(b, 0) + n
    named = sorted((s for s in volume if s != NONE), key=lambda s: (-volume[s], s))[:MAX_FLOW]
    axis = sorted(named) + ([NONE] if NONE in volume else [])
    matrix = [[flow.moved.get((a, b), 0) for b in axis] for a in axis]
    rows = tuple(
        (a, b, str(n)) for (a, b), n in sorted(flow.moved.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    top = ", ".join(f"{a} → {b}: {n}" for a, b, n in rows[:5])
    left_out = len(volume) - len(axis)
    title_full = f"{title}, {flow.since:%Y-%m-%d %H:%M} → {flow.until:%Y-%m-%d %H:%M} UTC"
    description = (
        f"Customers who left the row's segment and joined the column's between the two "
        f"snapshots ((none) is no segment); {sum(flow.moved.values()):,} moves in all. "
        f"Largest: {top}."
        + (
            f" {left_out} segments with little movement are left out of the map."
            if left_out
            else ""
        )
    )
    figure = charts.heatmap(
        axis, axis, matrix, title=title_full, xlabel="to segment", ylabel="from segment"
    )
    return _panel(key, title_full, description, Table(columns, rows), figure)


def send_time_panels(
    found: list[data.HourlyResponse],
    prior_strength: float,
    model: Callable[[data.HourlyResponse], list[float] | None] | None = None,
) -> list[Panel]:
    """A chart per segment: observed rate per hour, and the model's curve over it (the
    smoothed observed rate until the model has closed trials for the segment)."""
    columns = ("local hour", "sent", "responded", "observed rate", "curve")
    if not found:
        return [
            _empty(
                "send-time-empty",
                "Response by local send hour",
                "no message has been sent (the worker writes a message_sent "
                "event for every message it sends).",
                columns,
            )
        ]
    overall = overall_rate(found)
    panels = []
    for number, hourly in enumerate(found[:MAX_HOUR_PANELS], start=1):
        learned = model(hourly) if model is not None else None
        curve = learned or smoothed_curve(hourly, overall, prior_strength)
        label = MODEL_LABEL if learned else EMPIRICAL_LABEL
        title = f"Response by local send hour: {hourly.segment}"
        rows = tuple(
            (
                f"{h:02d}:00",
                str(hourly.sends[h]),
                str(hourly.responses[h]),
                _pct(hourly.responses[h] / hourly.sends[h]) if hourly.sends[h] else "-",
                _pct(curve[h]),
            )
            for h in range(24)
            if hourly.sends[h]
        )
        best = max(range(24), key=lambda h: (curve[h], -h))
        description = (
            f"{hourly.total_sends:,} messages sent to {hourly.segment} "
            f"(campaigns {', '.join(hourly.campaigns)}), {hourly.total_responses:,} responses "
            f"({_pct(hourly.overall_rate)}). Bars: observed rate per local send hour; line: "
            f"{label}, highest at {best:02d}:00 ({_pct(curve[best])})."
        )
        figure = charts.hour_response(
            hourly.sends, hourly.responses, curve, curve_label=label, title=title
        )
        panels.append(
            _panel(f"send-time-{number}", title, description, Table(columns, rows), figure)
        )
    return panels


def channel_panels(found: list[data.ChannelEngagement]) -> list[Panel]:
    mix_columns = ("channel", "sent")
    rate_columns = ("channel", "sent", "delivered", "opened", "clicked")
    if not found:
        message = "no message has been sent."
        return [
            _empty("channel-mix", "Channel mix", message, mix_columns),
            _empty("channel-engagement", "Engagement per channel", message, rate_columns),
        ]
    names = [c.channel for c in found]
    total = sum(c.sent for c in found)
    mix = _panel(
        "channel-mix",
        "Channel mix",
        f"Messages sent per channel, {total:,} in all: "
        + ", ".join(f"{c.channel} {c.sent:,}" for c in found)
        + ".",
        Table(mix_columns, tuple((c.channel, str(c.sent)) for c in found)),
        charts.bars(
            names,
            [c.sent for c in found],
            title="Channel mix",
            xlabel="channel",
            ylabel="messages sent",
        ),
    )
    kinds = ("delivered", "opened", "clicked")
    engagement = _panel(
        "channel-engagement",
        "Engagement per channel",
        "Share of the messages sent on each channel that were delivered, opened (machine "
        "opens excluded) and clicked: "
        + "; ".join(
            f"{c.channel} " + ", ".join(f"{k} {_pct(c.rate(k))}" for k in kinds) for c in found
        )
        + ".",
        Table(
            rate_columns,
            tuple(
                (
                    c.channel,
                    str(c.sent),
                    *(f"{getattr(c, k)} ({_pct(c.rate(k))})" for k in kinds),
                )
                for c in found
            ),
        ),
        charts.grouped_rates(
            names,
            {k: [c.rate(k) for c in found] for k in kinds},
            title="Engagement per channel",
            xlabel="channel",
            ylabel="share of messages sent",
        ),
    )
    return [mix, engagement]


def variant_panels(found: list[data.Allocation]) -> list[Panel]:
    columns = ("day (UTC)", "arm", "messages")
    if not found:
        return [
            _empty(
                "variant-allocation",
                "Variant allocation over time",
                "no campaign with A/B variants or a holdout has planned messages.",
                columns,
            )
        ]
    panels = []
    for allocation in found:
        title = f"Variant allocation over time: {allocation.campaign}"
        days = [f"{d:%m-%d}" for d in allocation.days]
        rows = tuple(
            (f"{d:%Y-%m-%d}", arm, str(counts[i]))
            for i, d in enumerate(allocation.days)
            for arm, counts in allocation.arms.items()
        )
        totals = ", ".join(f"{arm} {sum(c):,}" for arm, c in allocation.arms.items())
        description = (
            f"Outbox rows of {allocation.campaign} per arm per day of planning, over "
            f"{len(days)} days; in all: {totals}."
        )
        figure = charts.stacked_bars(
            days,
            allocation.arms,
            title=title,
            xlabel="day planned (UTC)",
            ylabel="messages planned",
        )
        key = f"variants-{allocation.campaign}"
        panels.append(_panel(key, title, description, Table(columns, rows), figure))
    return panels


def uplift_panel(found: Mapping[str, Comparison]) -> Panel:
    key, title = "uplift-intervals", "Uplift per campaign (treated − holdout conversion)"
    columns = ("campaign", "treated", "holdout", "difference", "95 % interval")
    rows = []
    drawn: list[tuple[str, float, float, float]] = []
    for name, c in sorted(found.items()):
        interval = c.interval
        rows.append(
            (
                name,
                f"{c.treated_converted:,}/{c.treated:,} ({_pct(c.treated_rate)})",
                f"{c.control_converted:,}/{c.control:,} ({_pct(c.control_rate)})",
                f"{c.difference:+.1%}",
                f"[{interval[0]:+.1%}, {interval[1]:+.1%}]" if interval else "no holdout",
            )
        )
        if interval is not None:
            drawn.append((name, c.difference, *interval))
    table = Table(columns, tuple(rows))
    if not drawn:
        message = (
            "uplift needs a campaign with a goal and a holdout group that has planned messages."
        )
        return Panel(key, title, message, table, empty=message)
    description = (
        "Conversion difference with its 95 % interval: "
        + "; ".join(f"{name} {d:+.1%} [{lo:+.1%}, {hi:+.1%}]" for name, d, lo, hi in drawn)
        + "."
    )
    figure = charts.intervals(
        [d[0] for d in drawn],
        [d[1] for d in drawn],
        [d[2] for d in drawn],
        [d[3] for d in drawn],
        title=title,
        xlabel="conversion difference (percentage points)",
        ylabel="campaign",
    )
    return _panel(key, title, description, table, figure)
