"""``narrowcast db``: create, upgrade and inspect the store's schema."""

from __future__ import annotations

import click

from narrowcast.cli.app import App, cli, pass_app


@cli.group()
def db() -> None:
    """Create and upgrade the customer store."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Bring the database schema to the newest version (safe to repeat)."""
    app.store.upgrade()
    click.echo(f"{app.store!r} is at schema version {app.store.current_revision()}")


@db.command("status")
@pass_app
def db_status(app: App) -> None:
    """Show the schema version of the database."""
    from narrowcast.store import head_revision

    current = app.store.current_revision()
    state = "up to date" if current == head_revision() else "needs `narrowcast db upgrade`"
    click.echo(f"{app.store!r}: schema {current or 'none'}, newest {head_revision()} — {state}")
