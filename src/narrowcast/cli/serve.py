"""``narrowcast serve``: the HTTP API on its own (inbox, web messages, tracking, webhooks)."""

from __future__ import annotations

import click

from narrowcast.cli.app import App, cli, pass_app


@cli.command()
@click.option("--host", help="Address to listen on (default [api] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default [api] port, 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes sharing the port (about one per CPU core).",
)
@pass_app
def serve(app: App, host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API until SIGTERM or Ctrl-C.

    Start several behind a load balancer if one is not enough: they share only
    the database. To serve from inside the worker instead, use `narrowcast run --http`.
    """
    import os

    from narrowcast.api.app import create_app
    from narrowcast.api.server import serve as run_server
    from narrowcast.api.server import serve_workers

    settings = app.settings
    app.store.require_current()
    api = create_app(settings, app.store)  # also checks the keys before any worker starts
    address = (host or settings.api.host, port or settings.api.port)
    if workers == 1:
        run_server(api, *address)
        return
    if settings.source is not None:  # each worker process reads the same file
        os.environ["NARROWCAST_CONFIG"] = str(settings.source.resolve())
    if os.environ.get("NARROWCAST_DATABASE_URL") is None:
        os.environ["NARROWCAST_DATABASE_URL"] = settings.database_url
    serve_workers(*address, workers)
