"""``narrowcast import``: customers and events from CSV / JSONL files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from narrowcast.cli.app import App, cli, pass_app, stderr
from narrowcast.ingest import (
    ImportOptions,
    ImportReport,
    Source,
    import_customers,
    import_events,
    open_source,
)
from narrowcast.ingest.coerce import zone


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
def import_customers_command(app: App, /, **kwargs: Any) -> None:
    """Upsert customers by id from FILE (.csv, .jsonl, .gz, or - for stdin)."""
    _run_import(app, import_customers, **kwargs)


@import_.command("events")
@_import_options
@pass_app
def import_events_command(app: App, /, **kwargs: Any) -> None:
    """Append events from FILE (.csv, .jsonl, .gz, or - for stdin)."""
    _run_import(app, import_events, **kwargs)


def _run_import(
    app: App,
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
            rebuild_indexes_above=settings.rebuild_indexes_above,
        )
        report = importer(app.store, source, options, default_tz=default_tz)
    click.echo(report.summary())


@contextmanager
def _progress(source: Source) -> Iterator[Callable[[int], None] | None]:
    if not stderr.is_terminal:
        yield None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task(f"importing {source.name}", total=source.size)
        yield lambda n: progress.advance(task, n)
