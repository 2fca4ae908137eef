"""``narrowcast report --html FILE`` on a shop that has run for a week, and on an empty store.

The file is parsed back (html.parser) and held to what the store says,
counted here independently of the report's own queries: the channel-mix bars
carry the number of ``message_sent`` events per channel, the send-hour tables
the sends and responses per local hour, the allocation tables the outbox rows
per arm and day. The page must open without network: no script, no link, no
URL anywhere. Every chart has a title, a description and axis labels.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from narrowcast.cli import cli
from narrowcast.segments.language import parse_duration
from narrowcast.segments.membership import flow, snapshot_instants
from narrowcast.store import Store
from narrowcast.store.schema import events, outbox, segment_evaluations
from narrowcast.worker.report import report

from .shop import SECRET, SECRET_ENV, Shop, build_shop, campaigns, write_config

# --- the page, parsed ------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    svg: str = ""
    caption: str = ""
    heading: str = ""
    empty: str = ""
    table: list[list[str]] = field(default_factory=list)


class Page(HTMLParser):
    """The report's figures: their SVG source, caption, empty note and table cells."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.figures: dict[str, Figure] = {}
        self.ids: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self._figure: Figure | None = None
        self._capture: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        for figure in self.figures.values():
            match = re.search(
                rf'<figure class="panel" id="{re.escape(figure.key)}".*?</figure>', text, re.S
            )
            assert match is not None
            svg = re.search(r"<svg\b.*?</svg>", match.group(0), re.S)
            figure.svg = svg.group(0) if svg else ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags[tag] += 1
        if found.get("id"):
            self.ids[found["id"] or ""] += 1
        if tag == "figure" and found.get("class") == "panel":
            self._figure = self.figures.setdefault(found["id"] or "", Figure(found["id"] or ""))
        elif self._figure is not None:
            if tag in ("figcaption", "h3") or (tag == "div" and found.get("class") == "empty"):
                self._capture = {"figcaption": "caption", "h3": "heading"}.get(tag, "empty")
            elif tag == "tr":
                self._row = []
            elif tag in ("td", "th") and self._row is not None:
                self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag in ("figcaption", "h3", "div"):
            self._capture = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._figure is not None:
            if self._row:
                self._figure.table.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._figure is not None and self._capture is not None:
            current = getattr(self._figure, self._capture)
            setattr(self._figure, self._capture, current + data)

    def rows(self, key: str) -> list[list[str]]:
        """The table body of figure ``key`` (without its header row)."""
        return self.figures[key].table[1:]


def svg_texts(svg: str) -> list[str]:
    """The visible text of an SVG (matplotlib writes one <text> per label)."""
    return [t.strip() for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("reporting-shop")
    (folder / "narrowcast.db").write_bytes(sqlite_template.read_bytes())
    store = Store(f"sqlite:///{folder / 'narrowcast.db'}")
    yield build_shop(store, folder)
    store.dispose()


@pytest.fixture(scope="module")
def page(shop: Shop) -> Page:
    path = shop.folder / "report.html"
    result = run(shop.config, "report", "--html", str(path))
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.output
    return Page(path.read_text("utf-8"))


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(config), *args],
        env={SECRET_ENV: SECRET, "NARROWCAST_DATABASE_URL": None},
        catch_exceptions=False,
    )


# --- the page as a whole ----------------------------------------------------------------------


def test_the_page_needs_no_network(page: Page) -> None:
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page.text), "a URL in the page"
    for tag in ("script", "link", "img", "iframe", "object", "embed"):
        assert page.tags[tag] == 0, f"<{tag}> in a self-contained report"
    assert "@import" not in page.text and "url(http" not in page.text
    assert "@font-face" not in page.text


def test_every_section_is_there_with_real_charts(page: Page) -> None:
    for section in ("segments", "send-time", "channels", "variants", "uplift"):
        assert page.ids[section] == 1, section
    drawn = [f for f in page.figures.values() if f.svg]
    assert len(drawn) >= 8
    assert {
        "segment-sizes",
        "segment-flow",
        "channel-mix",
        "channel-engagement",
        "uplift-intervals",
    } <= {f.key for f in drawn}


def test_every_chart_has_a_title_a_description_and_axis_labels(page: Page) -> None:
    for figure in page.figures.values():
        if not figure.svg:
            continue
        opening = re.match(r"<svg\b[^>]*>", figure.svg)
        assert opening is not None
        assert 'role="img"' in opening.group(0)
        title = re.search(r'<title id="([^"]+)">([^<]+)</title>', figure.svg)
        desc = re.search(r'<desc id="([^"]+)">([^<]+)</desc>', figure.svg)
        assert title and desc, figure.key
        assert f'aria-labelledby="{title.group(1)}"' in opening.group(0)
        assert f'aria-describedby="{desc.group(1)}"' in opening.group(0)
        texts = svg_texts(figure.svg)
        assert title.group(2).split(":")[0] in " ".join(texts), f"{figure.key}: no drawn title"
        assert len(desc.group(2)) > 40 and figure.caption.strip(), figure.key
        labels = {
            "segment-sizes": ("snapshot (UTC)", "customers"),
            "segment-flow": ("to segment", "from segment"),
            "channel-mix": ("channel", "messages sent"),
            "channel-engagement": ("channel", "share of messages sent"),
            "uplift-intervals": ("conversion difference (percentage points)", "campaign"),
        }.get(figure.key)
        if figure.key.startswith("send-time"):
            labels = ("local send hour", "response rate")
        elif figure.key.startswith("variants"):
            labels = ("day planned (UTC)", "messages planned")
        assert labels is not None, figure.key
        for label in labels:
            assert label in texts, f"{figure.key}: axis label {label!r} missing"


def test_ids_are_unique_across_the_charts(page: Page) -> None:
    repeated = [i for i, n in page.ids.items() if n > 1]
    assert repeated == []
    for reference in re.findall(r'(?:url\(#|href="#)([^)"]+)', page.text):
        assert page.ids[reference] == 1, f"#{reference} points nowhere"


# --- the numbers, against the store -----------------------------------------------------------


def test_channel_mix_bars_count_the_messages_sent(page: Page, shop: Shop) -> None:
    with shop.store.connect() as conn:
        sent = Counter(
            p["channel"]
            for (p,) in conn.execute(
                select(events.c.properties).where(events.c.type == "message_sent")
            )
        )
    assert len(sent) >= 3
    figure = page.figures["channel-mix"]
    assert {row[0]: int(row[1]) for row in page.rows("channel-mix")} == dict(sent)
    texts = svg_texts(figure.svg)
    for channel, n in sent.items():
        assert channel in texts and f"{n:,}" in texts, (channel, n)


def test_engagement_counts_opens_by_people_only(page: Page, shop: Shop) -> None:
    with shop.store.connect() as conn:
        rows = conn.execute(select(events.c.type, events.c.properties)).all()
    sent = {p["outbox_id"]: p["channel"] for t, p in rows if t == "message_sent"}
    kinds = {"message_delivered": 2, "message_opened": 3, "message_clicked": 4}
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for channel in sent.values():
        expected[channel][1] += 1
    for kind, column in kinds.items():
        boxes = {p.get("outbox_id") for t, p in rows if t == kind}
        for box in boxes & set(sent):
            expected[sent[box]][column] += 1
    machine = {p.get("outbox_id") for t, p in rows if t == "message_machine_opened"}
    assert machine, "the simulation writes machine opens"
    for row in page.rows("channel-engagement"):
        counts = expected[row[0]]
        assert int(row[1]) == counts[1]
        assert [int(cell.split(" ")[0]) for cell in row[2:]] == counts[2:], row


def test_response_by_local_send_hour_matches_the_log(page: Page, shop: Shop) -> None:
    """Sends and responses per hour, counted in Python from the raw events."""
    found = campaigns()
    with shop.store.connect() as conn:
        rows = conn.execute(
            select(events.c.customer_id, events.c.type, events.c.ts, events.c.properties)
        ).all()
    clicks = {(c, p.get("outbox_id")) for c, t, _, p in rows if t == "message_clicked"}
    goals: dict[tuple[str, str], list[object]] = defaultdict(list)
    for customer, kind, ts, _ in rows:
        goals[(customer, kind)].append(ts)
    expected: dict[str, list[list[int]]] = defaultdict(lambda: [[0] * 24, [0] * 24])
    for customer, kind, ts, p in rows:
        if kind != "message_sent" or p.get("local_hour") is None:
            continue
        campaign = found[p["campaign"]]
        label = campaign.segment or campaign.on_enter or f"campaign {campaign.name}"
        hour = int(p["local_hour"])
        window = parse_duration(campaign.attribution_window)
        converted = campaign.goal is not None and any(
            ts < g <= ts + window for g in goals[(customer, campaign.goal)]
        )
        expected[label][0][hour] += 1
        expected[label][1][hour] += int((customer, p["outbox_id"]) in clicks or converted)
    panels = {
        f.caption.split(" to ")[1].split(" (")[0]: key
        for key, f in page.figures.items()
        if key.startswith("send-time-")
    }
    assert len(panels) >= 4
    assert sum(sum(r) for s, r in expected.values()) > 20, "the simulation has responses"
    for label, key in panels.items():
        sends, responses = expected[label]
        table = {int(r[0][:2]): (int(r[1]), int(r[2])) for r in page.rows(key)}
        assert table == {h: (sends[h], responses[h]) for h in range(24) if sends[h]}, label
        texts = svg_texts(page.figures[key].svg)
        for h, (n, r) in table.items():
            assert f"{r}/{n}" in texts, (label, h)


def test_segment_sizes_and_flow_match_the_snapshots(page: Page, shop: Shop) -> None:
    with shop.store.connect() as conn:
        sizes = {
            (s, f"{at:%Y-%m-%d %H:%M}"): str(n)
            for s, at, n in conn.execute(
                select(
                    segment_evaluations.c.segment,
                    segment_evaluations.c.evaluated_at,
                    segment_evaluations.c.size,
                )
            )
        }
        instants = snapshot_instants(conn)
        moved = flow(conn, instants[0], instants[-1]).moved
    assert len(instants) >= 3
    assert {(r[0], r[1]): r[2] for r in page.rows("segment-sizes")} == sizes
    assert {(r[0], r[1]): int(r[2]) for r in page.rows("segment-flow")} == moved
    heat = svg_texts(page.figures["segment-flow"].svg)
    biggest = max(moved.values())
    assert f"{biggest:,}" in heat


def test_variant_allocation_counts_outbox_rows_per_arm_and_day(page: Page, shop: Shop) -> None:
    with shop.store.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.campaign,
                outbox.c.variant,
                outbox.c.state,
                outbox.c.assignment,
                outbox.c.created_at,
            )
        ).all()
    expected: Counter[tuple[str, str, str]] = Counter()
    for campaign, variant, state, assignment, created in rows:
        if assignment == "control":
            arm = "control"
        elif state == "holdout" or assignment == "holdout":
            arm = "holdout"
        else:
            arm = variant or "(single)"
        expected[(campaign, f"{created:%Y-%m-%d}", arm)] += 1
    shown = [k for k in page.figures if k.startswith("variants-")]
    assert "variants-coupon_offers" in shown and "variants-winback_lost" in shown
    for key in shown:
        campaign = key.removeprefix("variants-")
        table = {(r[0], r[1]): int(r[2]) for r in page.rows(key)}
        mine = {(d, a): n for (c, d, a), n in expected.items() if c == campaign}
        assert {k: v for k, v in table.items() if v} == mine
        arms = {a for _, a in mine}
        assert len(arms) >= 2
        legend = svg_texts(page.figures[key].svg)
        assert arms <= set(legend)


def test_uplift_shows_the_reports_interval(page: Page, shop: Shop) -> None:
    with shop.store.connect() as conn:
        holdouts = report(conn, campaigns(), None).holdouts
    with_interval = {n: c for n, c in holdouts.items() if c.interval is not None}
    assert "winback_lost" in with_interval
    rows = {r[0]: r for r in page.rows("uplift-intervals")}
    for name, c in with_interval.items():
        low, high = c.interval  # type: ignore[misc]
        assert rows[name][3] == f"{c.difference:+.1%}"
        assert rows[name][4] == f"[{low:+.1%}, {high:+.1%}]"
        assert name in svg_texts(page.figures["uplift-intervals"].svg)


# --- no data, and a period ------------------------------------------------------------------


def test_an_empty_store_says_no_data_yet(sqlite_store: Store, tmp_path: Path) -> None:
    config = write_config(tmp_path, sqlite_store.engine.url.render_as_string(hide_password=False))
    path = tmp_path / "out" / "empty.html"
    result = run(config, "report", "--html", str(path))
    assert result.exit_code == 0, result.output
    assert "0 charts" in result.output
    empty = Page(path.read_text("utf-8"))
    assert empty.figures and all(not f.svg for f in empty.figures.values())
    for figure in empty.figures.values():
        assert "No data yet" in figure.empty and figure.heading, figure.key
    assert "<svg" not in empty.text


def test_since_limits_the_period(shop: Shop, tmp_path: Path) -> None:
    since = (shop.end - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "recent.html"
    result = run(shop.config, "report", "--html", str(path), "--since", since)
    assert result.exit_code == 0, result.output
    recent = Page(path.read_text("utf-8"))
    assert f"since {since[:10]}" in recent.text
    total = (
        sum(int(r[1]) for r in recent.rows("channel-mix"))
        if recent.figures["channel-mix"].svg
        else 0
    )
    with shop.store.connect() as conn:
        everything = conn.execute(select(events.c.id).where(events.c.type == "message_sent")).all()
    assert total < len(everything)


def test_unwritable_file_is_a_clear_error(shop: Shop, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run(shop.config, "report", "--html", str(blocker / "report.html"))
    assert result.exit_code == 1
    assert f"cannot write {blocker / 'report.html'}" in result.output


def test_the_curve_is_the_send_time_models_posterior_mean(page: Page, shop: Shop) -> None:
    """The line over the bars is what the planner samples from: HourModel.curve()."""
    from narrowcast.optimize.learner import goals_of
    from narrowcast.optimize.send_time import HourModel
    from narrowcast.optimize.trials import read_trials

    key = next(k for k, f in page.figures.items() if "lost (campaigns winback_lost)" in f.caption)
    assert "send-time model (posterior mean)" in page.figures[key].caption
    planning = shop.settings.planning
    with shop.store.connect() as conn:
        sent_to = (
            select(outbox.c.customer_id.label("id"))
            .where(outbox.c.campaign == "winback_lost", outbox.c.state == "sent")
            .distinct()
        )
        channels = tuple(
            conn.execute(select(outbox.c.channel).where(outbox.c.channel.is_not(None)).distinct())
            .scalars()
            .all()
        )
        log = read_trials(
            conn,
            sent_to,
            goals_of(campaigns()),
            channels,
            datetime.now(UTC),
            planning.learning,
            planning.default_timezone,
        )
    curve = HourModel(log, planning.learning, 10, seed=0).curve()
    for row in page.rows(key):
        assert row[4] == f"{curve[int(row[0][:2])]:.1%}", row
