"""``narrowcast validate``: every campaign, segment rule and template checked in one run.

What is checked, and where each problem is reported:

* the segments file and every campaign file as files (TOML, fields, types,
  schedules, names) — ``file:line``;
* every segment rule against the store's catalogue — ``file:line, column``;
* each campaign's audience (``segment``, ``where``, ``exclude``), triggers
  (``on_enter`` segment, ``on_event`` and ``goal`` event types, ``unless``) —
  the campaign file's line of that field;
* its templates for every channel it may use and every variant: missing
  files, Jinja syntax, sandbox violations — ``template:line``;
* undefined variables and other rendering errors, found by rendering every
  template for a few customers the campaign would really reach (from the
  store), or for a synthetic customer when it would reach none yet.

It never stops at the first problem, and one broken campaign does not keep the
others from being checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from narrowcast.campaigns.loader import CampaignFile, campaign_paths, load_campaigns
from narrowcast.campaigns.messages import (
    campaign_variables,
    channels_with_templates,
    segment_keys,
    template_paths,
    template_problems,
)
from narrowcast.campaigns.model import Campaign
from narrowcast.config import Settings
from narrowcast.errors import did_you_mean
from narrowcast.planning.context import ContextReader
from narrowcast.planning.planner import PlanEntry, Planner
from narrowcast.render.errors import RenderError
from narrowcast.render.renderer import Renderer, distinct
from narrowcast.segments.definitions import DefinitionError, Definitions, load_definitions
from narrowcast.segments.errors import RuleError
from narrowcast.segments.language import Catalog, parse_rule
from narrowcast.store import Store

SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": "sample-customer",
    "email": "alex@example.com",
    "first_name": "Alex",
    "last_name": "Sample",
    "country": "ES",
    "city": "Madrid",
    "timezone": "Europe/Madrid",
    "locale": "en",
    "customer_type": "individual",
    "attributes": {},
}
SAMPLE_SEGMENT: dict[str, Any] = {
    "lead_score": 12.0,
    "nps": 9,
    "nps_class": "promoter",
    "intent": "hot",
    "clv": 240.0,
    "rfm_r": 4,
    "rfm_f": 3,
    "rfm_m": 4,
    "cart": {
        "product": "SKU-1",
        "name": "Sample product",
        "category": "sample",
        "brand": "Sample brand",
        "value": 49.9,
        "currency": "EUR",
        "quantity": 1,
    },
    "last_order": {"value": 49.9, "currency": "EUR", "category": "sample", "items": 1},
    "last_product": {"product": "SKU-1", "name": "Sample product", "category": "sample"},
    "favourite_category": "sample",
}


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    campaign: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass
class Report:
    campaigns: list[str] = field(default_factory=list)
    """The campaigns whose files loaded (and were checked further)."""
    problems: list[Problem] = field(default_factory=list)
    rendered: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "campaigns": self.campaigns,
            "rendered": self.rendered,
            "problems": [
                {"where": p.where, "campaign": p.campaign, "message": p.message}
                for p in self.problems
            ],
        }


def validate(
    settings: Settings,
    store: Store,
    paths: Iterable[Path] | None = None,
    *,
    now: datetime | None = None,
    samples: int = 3,
) -> Report:
    """Check campaign files (default: every one in ``[campaigns] dir``) and all they use."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    report = Report()
    segments_file = settings.campaigns.dir / "segments.toml"
    try:
        definitions = load_definitions(segments_file)
    except DefinitionError as exc:
        report.problems += [Problem("", p) for p in exc.problems]
        definitions = load_definitions(Path("/nonexistent/segments.toml"))
    chosen = _expand(paths, settings.campaigns.dir, definitions)
    kinds = tuple(settings.channels.routes())
    loaded = load_campaigns(chosen, kinds)
    report.problems += [Problem("", p) for p in loaded.problems]
    renderer = Renderer.from_settings(settings, settings.campaigns.templates)
    with store.connect() as conn:
        catalog = definitions.catalog(conn)
        report.problems += [Problem("", str(e.message)) for e in definitions.problems(conn)]
        planner = Planner(conn, definitions, settings.planning, now)
        context = ContextReader(conn, definitions, now)
        for name, found in loaded.files.items():
            report.campaigns.append(name)
            _campaign(
                report, found, definitions, catalog, settings, renderer, planner, context, samples
            )
    return report


def _expand(paths: Iterable[Path] | None, folder: Path, definitions: Definitions) -> list[Path]:
    """Campaign files: the named ones, or every one in the named or default folders."""
    segment_files = set(definitions.files)
    if paths is None:
        return campaign_paths(folder, segment_files)
    out: list[Path] = []
    for path in paths:
        out += campaign_paths(path, segment_files) if path.is_dir() else [path]
    return out


def _campaign(
    report: Report,
    found: CampaignFile,
    definitions: Definitions,
    catalog: Catalog,
    settings: Settings,
    renderer: Renderer,
    planner: Planner,
    context: ContextReader,
    samples: int,
) -> None:
    campaign = found.campaign
    before = len(report.problems)

    def problem(key: str, message: str) -> None:
        report.problems.append(Problem(found.where(key), message, campaign.name))

    for key in ("segment", "on_enter"):
        name = getattr(campaign, key)
        if name is not None and name not in definitions.segments:
            problem(
                key, f"'{key}': unknown segment '{name}'{did_you_mean(name, definitions.segments)}"
            )
    for name in campaign.exclude:
        if name not in definitions.segments:
            problem(
                "exclude",
                f"'exclude': unknown segment '{name}'{did_you_mean(name, definitions.segments)}",
            )
    for key in ("where", "unless"):
        text = getattr(campaign, key)
        if text is not None:
            try:
                parse_rule(text, catalog, origin=found.where(key))
            except RuleError as exc:
                report.problems.append(Problem("", str(exc.message), campaign.name))
    for key in ("on_event", "goal"):
        kind = getattr(campaign, key)
        if kind is not None and kind not in catalog.event_types:
            problem(
                key,
                f"'{key}': unknown event type '{kind}'{did_you_mean(kind, catalog.event_types)}",
            )
    channels = _channels(report, found, renderer, settings)
    if len(report.problems) > before:
        return  # rendering would only repeat what is already wrong
    _render_samples(report, found, channels, renderer, planner, context, samples)


def _channels(
    report: Report, found: CampaignFile, renderer: Renderer, settings: Settings
) -> tuple[str, ...]:
    campaign = found.campaign
    variants: list[str | None] = [v.name for v in campaign.variants] or [None]
    if campaign.channel == "auto":
        usable = channels_with_templates(renderer, campaign, settings.planning.channel_order)
        if not usable:
            report.problems.append(
                Problem(
                    found.where("channel"),
                    "'channel': \"auto\" needs templates for at least one of "
                    f"{', '.join(settings.planning.channel_order)} "
                    f"(templates/{campaign.name}/<channel>.<part>.j2)",
                    campaign.name,
                )
            )
        return usable
    for channel in campaign.channel:
        for variant in variants:
            for error in template_problems(renderer, campaign, channel, variant):
                report.problems.append(Problem("", _render_message(error), campaign.name))
    return campaign.channel


def _render_samples(
    report: Report,
    found: CampaignFile,
    channels: tuple[str, ...],
    renderer: Renderer,
    planner: Planner,
    context: ContextReader,
    samples: int,
) -> None:
    campaign = found.campaign
    variants: list[str | None] = [v.name for v in campaign.variants] or [None]
    customers = _sample_customers(campaign, planner, context, samples)
    segments: dict[str, dict[str, Any]] = {}
    if customers != [SAMPLE_CUSTOMER]:
        # Only what the templates use: the RFM ranks alone rank every ordering customer.
        kinds = {(c, v, row.get("locale")) for row in customers for c in channels for v in variants}
        keys = segment_keys(renderer, campaign, kinds)
        segments = context.segments([c["id"] for c in customers], campaign.segment, keys)
    errors: list[RenderError] = []
    for customer in customers:
        segment = segments.get(customer["id"], SAMPLE_SEGMENT)
        for channel in channels:
            for variant in variants:
                errors += renderer.problems(
                    channel,
                    customer,
                    campaign=campaign_variables(campaign),
                    variant=variant,
                    segment=segment,
                    paths=template_paths(campaign, channel, variant) or None,
                )
                report.rendered += 1
    for error in distinct(errors):
        report.problems.append(Problem("", _render_message(error), campaign.name))


def _sample_customers(
    campaign: Campaign, planner: Planner, context: ContextReader, samples: int
) -> list[dict[str, Any]]:
    """A few customers the campaign would reach now, or a synthetic one."""
    ids: list[str] = []
    try:
        plan = planner.plan(campaign, since=planner.now - timedelta(days=30))
        for entry in plan:
            if isinstance(entry, PlanEntry) and not entry.holdout:
                ids.append(entry.customer_id)
                if len(ids) >= samples:
                    break
    except RuleError:
        return [SAMPLE_CUSTOMER]
    if not ids:
        return [SAMPLE_CUSTOMER]
    rows = context.customers(ids)
    return [rows[i] for i in ids if i in rows] or [SAMPLE_CUSTOMER]


def _render_message(error: RenderError) -> str:
    return str(error.message)
