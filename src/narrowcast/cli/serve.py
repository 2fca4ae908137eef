"""``narrowcast serve``: the HTTP API on its own (inbox, web messages, tracking, webhooks)."""

from __future__ import annotations

import click

from narrowcast.cli.app import App, cli, pass_app


@cli.command()
@click.option("--host", help="Address to listen on (default [api] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default [api] port, 8000).")
@pass_app
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the HTTP API until SIGTERM or Ctrl-C.

    Start several behind a load balancer if one is not enough: they share only
    the database. To serve from inside the worker instead, use `narrowcast run --http`.
    """
    from narrowcast.api.app import create_app
    from narrowcast.api.server import serve as run_server

    settings = app.settings
    app.store.require_current()
    api = create_app(settings, app.store)
    run_server(api, host or settings.api.host, port or settings.api.port)
