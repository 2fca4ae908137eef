"""The ``narrowcast`` command: parse arguments, call the library, print.

Every command here is a thin shell over a library function that tests call
directly; user mistakes arrive as ``NarrowcastError`` (a ``ClickException``)
and are printed without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from narrowcast.config import Settings, load_settings
from narrowcast.ingest import (
    ImportOptions,
    ImportReport,
    Source,
    import_customers,
    import_events,
    open_source,
)
from narrowcast.ingest.coerce import zone
from narrowcast.store import Store

_stderr = Console(stderr=True)


class _App:
    """Settings and store, created on first use so ``--help`` never touches a database."""

    def __init__(self, config_path: Path | None) -> None:
        self._config_path = config_path
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._config_path)
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_app = click.make_pass_decorator(_App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="NARROWCAST_CONFIG",
    help="Config file (default ./config.toml; env NARROWCAST_CONFIG).",
)
@click.version_option(package_name="narrowcast")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """narrowcast — campaign automation for micro-segments."""
    app = _App(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


# --- db ---------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Create and upgrade the customer store."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: _App) -> None:
    """Bring the database schema to the newest version (safe to repeat)."""
    app.store.upgrade()
    click.echo(f"{app.store!r} is at schema version {app.store.current_revision()}")


@db.command("status")
@pass_app
def db_status(app: _App) -> None:
    """Show the schema version of the database."""
    from narrowcast.store import head_revision

    current = app.store.current_revision()
    state = "up to date" if current == head_revision() else "needs `narrowcast db upgrade`"
    click.echo(f"{app.store!r}: schema {current or 'none'}, newest {head_revision()} — {state}")


# --- import -----------------------------------------------------------------


def _import_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("file"),
        click.option(
            "--format",
            "format_",
            type=click.Choice(["csv", "jsonl"]),
            help="Read FILE as this format (needed for - / stdin).",
        ),
        click.option("--tz", help="IANA time zone of timestamps that carry no UTC offset."),
        click.option(
            "--skip-invalid",
            is_flag=True,
            help="Store the good rows; write bad ones to FILE.rejects.jsonl.",
        ),
        click.option(
            "--rejects",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Where --skip-invalid writes rejected rows.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.group("import")
def import_() -> None:
    """Import customers or events from CSV / JSONL files."""


@import_.command("customers")
@_import_options
@pass_app
def import_customers_command(app: _App, /, **kwargs: Any) -> None:
    """Upsert customers by id from FILE (.csv, .jsonl, .gz, or - for stdin)."""
    _run_import(app, import_customers, **kwargs)


@import_.command("events")
@_import_options
@pass_app
def import_events_command(app: _App, /, **kwargs: Any) -> None:
    """Append events from FILE (.csv, .jsonl, .gz, or - for stdin)."""
    _run_import(app, import_events, **kwargs)


def _run_import(
    app: _App,
    importer: Callable[..., ImportReport],
    *,
    file: str,
    format_: str | None,
    tz: str | None,
    skip_invalid: bool,
    rejects: Path | None,
) -> None:
    try:
        default_tz = zone(tz) if tz else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    source = open_source(file, format_)
    app.store.require_current()
    settings = app.settings.import_
    with _progress(source) as on_bytes:
        options = ImportOptions(
            skip_invalid=skip_invalid,
            rejects_path=rejects,
            batch_size=settings.batch_size,
            max_errors=settings.max_errors_shown,
            on_bytes=on_bytes,
        )
        report = importer(app.store, source, options, default_tz=default_tz)
    click.echo(report.summary())


@contextmanager
def _progress(source: Source) -> Iterator[Callable[[int], None] | None]:
    if not _stderr.is_terminal:
        yield None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=_stderr, transient=True) as progress:
        task = progress.add_task(f"importing {source.name}", total=source.size)
        yield lambda n: progress.advance(task, n)


# --- demo -------------------------------------------------------------------


@cli.command()
@click.option(
    "--customers",
    "count",
    type=click.IntRange(min=1),
    default=5_000,
    show_default=True,
    help="How many customers the demo shop has.",
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Same seed and --at, same shop."
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
    help="The demo's 'now' (ISO 8601); default the current time.",
)
@pass_app
def demo(app: _App, count: int, seed: int, at: datetime | None) -> None:
    """Fill the configured store with a realistic synthetic shop and summarise it."""
    from narrowcast.demo import describe_store, generate_demo

    now = (
        (at if at and at.tzinfo else (at or datetime.now(UTC)).replace(tzinfo=UTC))
        if at
        else datetime.now(UTC)
    )
    app.store.upgrade()
    with _counter(count) as on_customers:
        report = generate_demo(
            app.store, customers=count, seed=seed, now=now, on_customers=on_customers
        )
    click.echo(report.summary())
    click.echo(describe_store(app.store, now))


@contextmanager
def _counter(total: int) -> Iterator[Callable[[int], None] | None]:
    if not _stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=_stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("generating customers", total=total)
        yield lambda n: progress.advance(task, n)


def main() -> None:
    # Standalone mode prints a NarrowcastError (a ClickException) and exits with its code.
    cli.main(standalone_mode=True)
