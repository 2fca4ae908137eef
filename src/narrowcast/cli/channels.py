"""``narrowcast channels``: which adapters are installed and configured; a test send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from narrowcast.channels import ChannelContext, Receipt, discover
from narrowcast.channels.errors import ChannelError
from narrowcast.cli.app import App, cli, pass_app


@cli.group()
def channels() -> None:
    """Channel adapters: list them, send a test message."""


@channels.command("list")
@pass_app
def channels_list(app: App) -> None:
    """Show installed channel adapters and which channels config.toml routes to them."""
    routes = app.settings.channels.routes()
    users: dict[str, list[str]] = {}
    for kind, route in routes.items():
        for position, name in enumerate(route.providers):
            users.setdefault(name, []).append(kind if position == 0 else f"{kind} (failover)")
    table = Table("adapter", "serves", "configured for", "package", "status")
    plugins = discover()
    for plugin in plugins:
        serves = ", ".join(sorted(plugin.adapter.channels)) if plugin.adapter else "?"
        status = "ok" if plugin.error is None else f"[red]broken: {plugin.error.reason}[/red]"
        table.add_row(
            plugin.name,
            serves,
            ", ".join(users.get(plugin.name, [])) or "-",
            plugin.distribution or "?",
            status,
        )
    Console(width=160).print(table)
    installed = {plugin.name for plugin in plugins}
    for kind, route in routes.items():
        names = " → ".join(
            name if name in installed else f"{name} (not installed)" for name in route.providers
        )
        click.echo(f"{kind}: {names}")
    broken = [plugin for plugin in plugins if plugin.error is not None]
    if broken:
        raise ChannelError(
            f"{len(broken)} channel plugin(s) cannot be used: "
            + "; ".join(str(plugin.error) for plugin in broken)
        )


@channels.command("test")
@click.argument("channel")
@click.option("--to", "customer_id", required=True, help="The customer id to send to.")
@pass_app
def channels_test(app: App, channel: str, customer_id: str) -> None:
    """Send one test message on CHANNEL to a customer through the configured provider."""
    from narrowcast.channels import build_routes
    from narrowcast.channels.probe import send_test, test_messages

    app.store.require_current()
    settings = app.settings
    context = ChannelContext(store=app.store, config_file=settings.source)
    routes = build_routes(settings.channels, context, only=channel)
    now = datetime.now(UTC)
    messages = test_messages(app.store, channel, customer_id, now)
    results = asyncio.run(send_test(routes, channel, messages))
    failed = 0
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, Receipt):
            click.echo(
                f"{channel} to {message.to or customer_id}: accepted by {result.provider}"
                + (f" (id {result.provider_id})" if result.provider_id else "")
            )
        else:
            failed += 1
            click.echo(
                f"{channel} to {message.to or customer_id}: {type(result).__name__}: "
                f"{result.reason}",
                err=True,
            )
    if failed:
        raise ChannelError(f"{failed} of {len(results)} test message(s) were not accepted")


@channels.command("resume")
@click.argument("channel")
@pass_app
def resume(app: App, channel: str) -> None:
    """Let the worker send CHANNEL again after it was paused (fix its credentials first)."""
    from narrowcast.dispatch.outbox import Outbox

    app.store.require_current()
    if Outbox(app.store, "cli").resume(channel):
        click.echo(f"{channel}: resumed; the waiting messages go out with the next batches")
    else:
        click.echo(f"{channel} was not paused")
