"""The ``narrowcast`` group and what every command shares: settings and the store.

Each command group lives in its own module beside this one and registers itself
on ``cli``; ``narrowcast.cli`` imports them all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from narrowcast.config import Settings, load_settings
from narrowcast.store import Store

if TYPE_CHECKING:
    from narrowcast.campaigns.loader import Loaded
    from narrowcast.render.renderer import Renderer
    from narrowcast.segments.definitions import Definitions

stderr = Console(stderr=True)


class App:
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

    @property
    def segments_file(self) -> Path:
        return self.settings.campaigns.dir / "segments.toml"

    def definitions(self) -> Definitions:
        from narrowcast.segments.definitions import load_definitions

        return load_definitions(self.segments_file)

    def campaigns(self, *, strict: bool = False) -> Loaded:
        """The campaign files of the configured folder (``strict``: raise on any problem)."""
        from narrowcast.campaigns.loader import campaign_paths, load_campaigns

        paths = campaign_paths(self.settings.campaigns.dir, set(self.definitions().files))
        loaded = load_campaigns(paths, tuple(self.settings.channels.routes()))
        if strict:
            loaded.raise_problems()
        return loaded

    def renderer(self) -> Renderer:
        from narrowcast.render.renderer import Renderer

        return Renderer.from_settings(self.settings, self.settings.campaigns.templates)

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_app = click.make_pass_decorator(App)


class InstantType(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """An instant as ISO 8601 with a UTC offset (``2026-03-01T09:00:00+01:00``, ``…Z``).

    A bare date means midnight UTC. A date and time without an offset is refused:
    it would mean a different instant on every machine.
    """

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not an ISO 8601 instant like 2026-03-01T09:00:00+01:00")
        if parsed.tzinfo is None:
            self.fail(f"{text!r} has no UTC offset — add one, e.g. {text}Z or {text}+01:00")
        return parsed


INSTANT = InstantType()


def now_or(at: datetime | None) -> datetime:
    """``--at`` when given, else the current instant; always aware, in UTC."""
    return (at or datetime.now(UTC)).astimezone(UTC)


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
    app = App(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)
