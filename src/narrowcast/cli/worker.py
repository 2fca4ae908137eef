"""``narrowcast tick``, ``run``, ``status`` and ``report``: the worker and what it did."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from narrowcast.cli.app import INSTANT, App, cli, pass_app

if TYPE_CHECKING:
    from narrowcast.campaigns.model import Campaign


@cli.command()
@click.option(
    "--at",
    type=INSTANT,
    help="Act as if it were this instant (reproducible runs); default the database's time.",
)
@pass_app
def tick(app: App, at: datetime | None) -> None:
    """One pass: plan what is due, sweep expired leases, send everything due; then exit."""
    from narrowcast.dispatch.clock import FixedClock
    from narrowcast.worker.worker import Worker

    app.store.require_current()
    worker = Worker(app.settings, app.store, clock=FixedClock(at) if at else None)
    report = worker.tick()
    click.echo(report.summary())


@cli.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines, or one JSON object per line.",
)
@click.option(
    "--http",
    "http",
    metavar="[HOST:]PORT",
    is_flag=False,
    flag_value="",
    default=None,
    help="Also serve the HTTP API from this process (default address: [api] host and port).",
)
@pass_app
def run(app: App, log_format: str, http: str | None) -> None:
    """Run the worker: plan, send and record, until SIGTERM or Ctrl-C.

    Start as many as you like against one PostgreSQL: they share the work through
    the database. On SQLite run one.
    """
    import asyncio

    from narrowcast.worker.daemon import Daemon
    from narrowcast.worker.logs import configure
    from narrowcast.worker.worker import Worker

    configure(log_format)
    app.store.require_current()
    worker = Worker(app.settings, app.store)
    serve = None
    if http is not None:
        from narrowcast.api.app import create_app
        from narrowcast.api.server import in_process

        host, port = _address(http, app.settings.api.host, app.settings.api.port)
        serve = in_process(create_app(app.settings, app.store), host, port)
    raise SystemExit(asyncio.run(Daemon(worker).run(serve)))


def _address(text: str, host: str, port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``PORT`` or empty (the configured address)."""
    if not text:
        return host, port
    head, sep, tail = text.rpartition(":")
    chosen_host = head if sep and head else host
    try:
        chosen_port = int(tail)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not HOST:PORT or PORT, e.g. 127.0.0.1:8000", param_hint="--http"
        ) from None
    if not 1 <= chosen_port <= 65535:
        raise click.BadParameter(f"port {chosen_port} is out of range", param_hint="--http")
    return chosen_host, chosen_port


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Queue depth by state and channel, paused channels, next runs, latest errors."""
    import json
    from datetime import UTC
    from datetime import datetime as dt

    from narrowcast.worker.status import status as read

    app.store.require_current()
    campaigns = {name: f.campaign for name, f in app.campaigns().files.items()}
    with app.store.connect() as conn:
        found = read(conn, campaigns, dt.now(UTC))
    click.echo(json.dumps(found.as_json(), indent=2) if as_json else found.text())


@cli.command()
@click.argument("campaign", required=False)
@click.option("--since", type=INSTANT, help="Only messages planned to go out after this instant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the charts to this self-contained HTML file (opens without network).",
)
@pass_app
def report(
    app: App,
    campaign: str | None,
    since: datetime | None,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Results per campaign, variant and channel; conversions and the holdout comparison.

    With --html FILE, the charts instead: segment sizes and flow, response by local
    send hour, channels, variant allocation and uplift.
    """
    import json

    from narrowcast.worker.report import report as build

    app.store.require_current()
    loaded = app.campaigns()
    if campaign is not None:
        loaded.get(campaign)  # an unknown name says so, with a suggestion
    campaigns = {name: f.campaign for name, f in loaded.files.items()}
    if html_path is not None:
        _html_report(app, campaigns, since, campaign, html_path)
        return
    with app.store.connect() as conn:
        found = build(conn, campaigns, since, campaign, app.settings.planning.learning)
    click.echo(json.dumps(found.as_json(), indent=2) if as_json else found.text())


def _html_report(
    app: App,
    campaigns: dict[str, Campaign],
    since: datetime | None,
    only: str | None,
    path: Path,
) -> None:
    from datetime import UTC
    from datetime import datetime as dt

    from narrowcast.reporting import build_sections, render_report, write_report

    now = dt.now(UTC)
    with app.store.connect() as conn:
        sections = build_sections(
            conn, campaigns, since=since, only=only, planning=app.settings.planning, now=now
        )
    page = render_report(sections, generated=now, since=since, only=only)
    try:
        write_report(path, page)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc
    panels = [p for s in sections for p in s.panels]
    drawn = sum(1 for p in panels if p.svg)
    click.echo(
        f"wrote {path} ({len(page) / 1024:,.0f} KiB): {drawn} charts"
        + (f", {len(panels) - drawn} without data yet" if drawn < len(panels) else "")
    )
