"""``narrowcast validate``, ``narrowcast dry-run`` and ``narrowcast campaigns list``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from narrowcast.cli.app import INSTANT, App, cli, now_or, pass_app
from narrowcast.plaintable import format_table


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--at", type=INSTANT, help="Check as of this instant (ISO 8601); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for CI).")
@pass_app
def validate(app: App, paths: tuple[Path, ...], at: datetime | None, as_json: bool) -> None:
    """Check campaign files, segment rules and templates; report every problem.

    PATHS are campaign files or folders (default: the campaigns folder of the config).
    Templates are rendered for a few real customers the campaign would reach.
    """
    from narrowcast.campaigns.validation import validate as check

    app.store.require_current()
    report = check(app.settings, app.store, list(paths) or None, now=now_or(at))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        for problem in report.problems:
            click.echo(f"✗ {problem}", err=True)
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(
            f"{len(report.campaigns)} campaign(s) checked, {report.rendered} message(s) "
            f"rendered: {verdict}"
        )
    if not report.ok:
        raise click.exceptions.Exit(2)


@cli.command("dry-run")
@click.argument("campaign")
@click.option("--at", type=INSTANT, help="Plan as of this instant (ISO 8601); default now.")
@click.option(
    "--since",
    type=INSTANT,
    help="Trigger campaigns: plan the triggers after this instant (default: the last day).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many sample messages to render.",
)
@click.option("--customer", "customer_id", help="Explain every stage for this customer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the samples here: .eml for email, .json otherwise, and summary.json.",
)
@pass_app
def dry_run_command(
    app: App,
    campaign: str,
    at: datetime | None,
    since: datetime | None,
    limit: int,
    customer_id: str | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """Show who CAMPAIGN would reach, on which channel and when — without sending anything."""
    from narrowcast.optimize.learner import goals_of
    from narrowcast.planning.dry_run import dry_run, write_samples

    library = app.campaigns()
    found = library.get(campaign)
    app.store.require_current()
    result = dry_run(
        app.store,
        found.campaign,
        app.definitions(),
        app.settings.planning,
        app.renderer(),
        now_or(at),
        limit=limit,
        customer_id=customer_id,
        since=since,
        goals=goals_of({name: f.campaign for name, f in library.files.items()}),
    )
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(result.text())
    if out is not None:
        sender = app.settings.channels.email.parsed_sender()
        written = write_samples(result, out, sender)
        click.echo(f"wrote {len(written)} files to {out}", err=as_json)


@cli.group()
def campaigns() -> None:
    """Campaign files: what is defined, when it runs, whom it reaches."""


@campaigns.command("list")
@click.option("--at", type=INSTANT, help="As of this instant (ISO 8601); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_campaigns(app: App, at: datetime | None, as_json: bool) -> None:
    """Every campaign: enabled, schedule, next run and audience size."""
    from narrowcast.campaigns.schedule import next_occurrence
    from narrowcast.planning.planner import Planner

    loaded = app.campaigns(strict=False)
    now = now_or(at)
    app.store.require_current()
    rows: list[dict[str, Any]] = []
    with app.store.connect() as conn:
        planner = Planner(conn, app.definitions(), app.settings.planning, now)
        for name, found in sorted(loaded.files.items()):
            campaign = found.campaign
            kind = campaign.schedule_kind
            schedule = f"{kind} {getattr(campaign, kind)}"
            if campaign.delay:
                schedule += f" +{campaign.delay}"
            upcoming = None if campaign.triggered else next_occurrence(campaign, now)
            size = _audience_size(conn, planner, campaign, now)
            rows.append(
                {
                    "name": name,
                    "enabled": campaign.enabled,
                    "schedule": schedule,
                    "next_run": upcoming.isoformat() if upcoming else None,
                    "audience": size,
                    "channel": campaign.channel
                    if isinstance(campaign.channel, str)
                    else list(campaign.channel),
                    "file": str(found.path),
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        table = [
            (
                r["name"],
                "yes" if r["enabled"] else "no",
                r["schedule"],
                (r["next_run"] or "on trigger" if r["enabled"] else "-")[:16].replace("T", " "),
                r["audience"] if r["audience"] is not None else "error",
            )
            for r in rows
        ]
        click.echo(
            format_table(("campaign", "enabled", "schedule", "next run (UTC)", "audience"), table)
        )
    for problem in loaded.problems:
        click.echo(f"✗ {problem}", err=True)
    if loaded.problems:
        raise click.exceptions.Exit(2)


def _audience_size(conn: Any, planner: Any, campaign: Any, now: datetime) -> int | None:
    from sqlalchemy import func, select

    from narrowcast.segments.errors import RuleError

    try:
        if campaign.triggered:
            since = now - timedelta(days=1)
            audience = planner.triggered(campaign, planner.audience(campaign), since)
        else:
            audience = planner.audience(campaign)
        return int(conn.execute(select(func.count()).select_from(audience.subquery())).scalar_one())
    except RuleError:
        return None
