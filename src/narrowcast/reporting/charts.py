"""Charts as inline SVG: matplotlib figures, drawn without pyplot, made fit for a web page.

Each function draws one kind of chart on a fresh ``matplotlib.figure.Figure``
(no pyplot, no global figure state, so threads of the HTTP server can draw at
once) and ``to_svg`` turns it into an ``<svg>`` element to put straight into
HTML:

* text stays text (``svg.fonttype = none``): it is small, selectable, and
  screen readers and tests can read the labels;
* no XML prolog, DOCTYPE, metadata or namespace URLs — nothing that points
  outside the page;
* every ``id`` gets a per-chart prefix, so many charts can share one page
  without their clip paths and markers colliding;
* ``role="img"`` with a ``<title>`` and ``<desc>`` as its accessible name and
  description.

The two rcParams below are set once, at import, before any thread draws:
they are the only process-wide state the charts read, and nothing changes
them afterwards.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "narrowcast"  # the same data draws the same SVG

WIDTH = 7.2
"""Inches; a chart is drawn at 72 points per inch and scales to its container."""
PALETTE = (
    "#1f5fbf",
    "#e07b00",
    "#2e7d32",
    "#c62828",
    "#6a1b9a",
    "#00838f",
    "#8d6e63",
    "#ad1457",
    "#546e7a",
    "#9e9d24",
)
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_ID = re.compile(r'\bid="([^"]+)"')


def _figure(height: float = 3.2) -> Figure:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    figure.set_facecolor("white")
    return figure


def _style(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e4e4e4", linewidth=0.6)
    axes.set_axisbelow(True)


def to_svg(figure: Figure, key: str, title: str, description: str) -> str:
    """The figure as an inline ``<svg>`` element with an accessible name and description."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    text = _PROLOG.sub("", buffer.getvalue(), count=1)
    text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    text = text.replace(' xmlns="http://www.w3.org/2000/svg"', "")
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    for old in set(_ID.findall(text)):
        new = f"{prefix}-{old}"
        text = (
            text.replace(f'id="{old}"', f'id="{new}"')
            .replace(f"url(#{old})", f"url(#{new})")
            .replace(f'href="#{old}"', f'href="#{new}"')
        )
    text = re.sub(r'\s(width|height)="[^"]*pt"', "", text, count=2)
    title_id, desc_id = f"{prefix}-title", f"{prefix}-desc"
    opening = (
        f'<svg role="img" aria-labelledby="{title_id}" aria-describedby="{desc_id}" '
        'preserveAspectRatio="xMidYMid meet" class="chart"'
    )
    text = text.replace("<svg", opening, 1)
    head_end = text.index(">", text.index("<svg")) + 1
    accessible = (
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>'
    )
    return text[:head_end] + accessible + text[head_end:].rstrip() + "\n"


def lines_over_time(
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """One line (with markers) per series; the legend beside the plot."""
    figure = _figure()
    axes = figure.add_subplot()
    for number, (name, points) in enumerate(series.items()):
        axes.plot(  # matplotlib draws datetimes on a date axis (its stubs want numbers)
            [at for at, _ in points],  # type: ignore[arg-type]
            [value for _, value in points],
            marker="o",
            markersize=3.5,
            linewidth=1.4,
            color=PALETTE[number % len(PALETTE)],
            label=name,
        )
    _style(axes, title, xlabel, ylabel)
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    figure.autofmt_xdate(rotation=30)
    return figure


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[int]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """A count per cell, shaded by size and written in the cell."""
    height = max(3.0, 1.2 + 0.32 * len(rows))
    figure = _figure(height)
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", aspect="auto", vmin=0)
    axes.set_xticks(range(len(columns)), labels=columns, rotation=40, ha="right")
    axes.set_yticks(range(len(rows)), labels=rows)
    _style(axes, title, xlabel, ylabel)
    axes.grid(False)
    axes.spines[["left", "bottom"]].set_visible(False)
    peak = max((max(row) for row in values if row), default=0)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value:
                dark = peak and value > peak * 0.6
                axes.text(
                    j,
                    i,
                    f"{value:,}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "#1a1a1a",
                )
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colorbar.set_label("customers", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    return figure


def hour_response(
    sends: Sequence[int],
    responses: Sequence[int],
    curve: Sequence[float],
    *,
    curve_label: str,
    title: str,
) -> Figure:
    """Observed response rate per local send hour as bars, the model's curve as a line."""
    figure = _figure(2.7)
    axes = figure.add_subplot()
    hours = list(range(24))
    observed = [r / n if n else 0.0 for r, n in zip(responses, sends, strict=True)]
    bars = axes.bar(
        hours, observed, color=PALETTE[0], alpha=0.55, width=0.8, label="observed (responses/sent)"
    )
    for bar, n, r in zip(bars, sends, responses, strict=True):
        if n:
            axes.annotate(
                f"{r}/{n}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=6,
                color="#333333",
            )
    axes.plot(hours, list(curve), color=PALETTE[1], linewidth=1.8, label=curve_label)
    _style(axes, title, "local send hour", "response rate")
    axes.set_xticks(hours, labels=[f"{h:02d}" for h in hours])
    axes.set_xlim(-0.6, 23.6)
    top = max([*observed, *curve, 0.01]) * 1.25
    axes.set_ylim(0, top)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0 if top >= 0.1 else 1))
    axes.legend(fontsize=7, loc="upper left", frameon=False)
    return figure


def bars(
    categories: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """One bar per category, its value written on it."""
    figure = _figure(2.8)
    axes = figure.add_subplot()
    drawn = axes.bar(
        categories, values, color=[PALETTE[i % len(PALETTE)] for i in range(len(values))]
    )
    axes.bar_label(drawn, labels=[f"{v:,.0f}" for v in values], fontsize=8, padding=2)
    _style(axes, title, xlabel, ylabel)
    axes.set_ylim(0, max([*values, 1]) * 1.18)
    return figure


def grouped_rates(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """Rates (0–1) side by side per category, one colour per series, labelled in percent."""
    figure = _figure(2.8)
    axes = figure.add_subplot()
    count = max(len(series), 1)
    width = 0.8 / count
    for number, (name, values) in enumerate(series.items()):
        offsets = [i - 0.4 + width * (number + 0.5) for i in range(len(categories))]
        drawn = axes.bar(offsets, values, width, label=name, color=PALETTE[number % len(PALETTE)])
        axes.bar_label(drawn, labels=[f"{v:.0%}" for v in values], fontsize=6, padding=1)
    axes.set_xticks(range(len(categories)), labels=categories)
    _style(axes, title, xlabel, ylabel)
    axes.set_ylim(0, 1.12)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return figure


def stacked_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """Counts per category, stacked by series."""
    figure = _figure(2.8)
    axes = figure.add_subplot()
    bottom = [0] * len(categories)
    for number, (name, values) in enumerate(series.items()):
        axes.bar(
            categories,
            values,
            bottom=bottom,
            label=name,
            color=PALETTE[number % len(PALETTE)],
            width=0.7,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _style(axes, title, xlabel, ylabel)
    axes.set_ylim(0, max([*bottom, 1]) * 1.1)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    if len(categories) > 6:
        axes.tick_params(axis="x", labelrotation=40)
    return figure


def intervals(
    labels: Sequence[str],
    points: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Figure:
    """A point with its interval per label (horizontal), and the line of no effect."""
    figure = _figure(max(2.2, 1.1 + 0.45 * len(labels)))
    axes = figure.add_subplot()
    rows = list(range(len(labels)))
    below = [p - lo for p, lo in zip(points, lows, strict=True)]
    above = [hi - p for p, hi in zip(points, highs, strict=True)]
    axes.errorbar(
        points,
        rows,
        xerr=[below, above],
        fmt="o",
        color=PALETTE[0],
        ecolor=PALETTE[0],
        capsize=4,
        markersize=5,
    )
    axes.axvline(0, color="#888888", linewidth=1, linestyle="--")
    axes.set_yticks(rows, labels=labels)
    axes.set_ylim(-0.7, len(labels) - 0.3)
    axes.invert_yaxis()
    _style(axes, title, xlabel, ylabel)
    axes.grid(axis="x", color="#e4e4e4", linewidth=0.6)
    axes.grid(axis="y", visible=False)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    return figure
