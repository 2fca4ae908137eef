"""``narrowcast demo``: a synthetic shop in the configured store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from narrowcast.cli.app import App, cli, pass_app, stderr


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
@click.option(
    "--shop-only",
    is_flag=True,
    help="Only fill the store; do not run the campaigns through the worker.",
)
@pass_app
def demo(app: App, count: int, seed: int, at: datetime | None, shop_only: bool) -> None:
    """Fill the store with a synthetic shop, then run the campaigns over a simulated day.

    The campaigns of the campaigns folder are planned and sent the way the worker
    does, tick by tick, through the configured adapters (by default files in
    outbox/ and the in-app / web tables: no credentials needed).
    """
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
    if not shop_only:
        from narrowcast.demo.pipeline import run_pipeline

        click.echo(run_pipeline(app.settings, app.store, now, seed).summary())


@contextmanager
def _counter(total: int) -> Iterator[Callable[[int], None] | None]:
    if not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("generating customers", total=total)
        yield lambda n: progress.advance(task, n)
