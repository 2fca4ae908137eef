"""The operator's settings: ``config.toml`` turned into typed, validated values.

Which file: ``--config PATH``, else ``$NARROWCAST_CONFIG``, else ``./config.toml``.
A missing default file is fine (every setting has a default, so a fresh folder
just works); a file the operator named explicitly must exist.

Secrets never live in the file. A setting whose key ends in ``_env`` names an
environment variable, and the value is read from there when the file is
loaded, so a missing variable is reported at start-up with the key that wanted
it — not half-way through a send.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from narrowcast.api.settings import ApiSettings
from narrowcast.channels.settings import ChannelsSettings
from narrowcast.dispatch.settings import DispatchSettings, WorkerSettings
from narrowcast.errors import NarrowcastError, did_you_mean
from narrowcast.planning.settings import PlanningSettings
from narrowcast.render.settings import LinksSettings

DEFAULT_CONFIG = Path("config.toml")
DEFAULT_DATABASE_URL = "sqlite:///narrowcast.db"


class ConfigError(NarrowcastError):
    """config.toml cannot be read or says something invalid."""

    exit_code = 2


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """``[database]``: where the customer store lives."""

    url: str = DEFAULT_DATABASE_URL
    # A PostgreSQL URL usually carries a password, so it may come from the environment.
    url_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseSettings:
        if self.url_env is not None and "url" in self.model_fields_set:
            raise ValueError("set either 'url' or 'url_env', not both")
        return self


class ImportSettings(_Section):
    """``[import]``: how importers batch their writes."""

    batch_size: int | None = None
    """Rows per write batch; ``None`` lets the importer pick for the database."""
    max_errors_shown: int = 20
    rebuild_indexes_above: float | None = 0.25
    """A big import (more new events than this fraction of those stored, and at least
    100,000) drops the events indexes and rebuilds them before it commits — several
    times faster, but on PostgreSQL it locks ``events`` and ``customers`` until the
    commit. Set a large number (e.g. 1e9) to never do it."""

    @model_validator(mode="after")
    def _positive(self) -> ImportSettings:
        if (self.batch_size is not None and self.batch_size < 1) or self.max_errors_shown < 1:
            raise ValueError("batch_size and max_errors_shown must be at least 1")
        if self.rebuild_indexes_above is not None and self.rebuild_indexes_above <= 0:
            raise ValueError("rebuild_indexes_above must be more than 0")
        return self


class CampaignSettings(_Section):
    """``[campaigns]``: where the marketers' files live (relative to the config file)."""

    dir: Path = Path("campaigns")
    """Campaign files and ``segments.toml``."""
    templates: Path = Path("templates")


class Settings(_Section):
    """Everything narrowcast reads from config.toml, with defaults for all of it."""

    database: DatabaseSettings = DatabaseSettings()
    import_: ImportSettings = ImportSettings()
    campaigns: CampaignSettings = CampaignSettings()
    planning: PlanningSettings = PlanningSettings()
    dispatch: DispatchSettings = DispatchSettings()
    worker: WorkerSettings = WorkerSettings()
    links: LinksSettings = LinksSettings()
    channels: ChannelsSettings = ChannelsSettings()
    api: ApiSettings = ApiSettings()
    source: Path | None = None
    """The file these settings came from, or ``None`` for pure defaults."""

    @property
    def database_url(self) -> str:
        return self.database.url


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file; apply environment overrides.

    ``env`` defaults to ``os.environ``; tests pass their own mapping.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("NARROWCAST_CONFIG"))
    chosen = Path(path if path is not None else env.get("NARROWCAST_CONFIG") or DEFAULT_CONFIG)

    raw: dict[str, Any] = {}
    source: Path | None = None
    if chosen.exists():
        raw = _read_toml(chosen)
        source = chosen
    elif explicit:
        raise ConfigError(f"{chosen}: no such config file (named by --config or NARROWCAST_CONFIG)")

    where = str(chosen)
    raw = dict(raw)
    if "import" in raw:
        raw["import_"] = raw.pop("import")
    try:
        settings = Settings.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from exc

    database = settings.database
    if database.url_env is not None:
        database = DatabaseSettings(url=_from_env(env, database.url_env, "database.url_env", where))
    if env.get("NARROWCAST_DATABASE_URL"):
        database = DatabaseSettings(url=env["NARROWCAST_DATABASE_URL"])
    campaigns = settings.campaigns
    if source is not None and source.parent != Path():
        # Paths in the file are relative to the file, wherever narrowcast is started from.
        campaigns = CampaignSettings(
            dir=source.parent / campaigns.dir, templates=source.parent / campaigns.templates
        )
    return settings.model_copy(update={"database": database, "campaigns": campaigns})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc


def _from_env(env: Mapping[str, str], name: str, key: str, where: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(
            f"{where}: '{key}' names the environment variable {name}, which is not set — "
            f"export {name}=… before starting narrowcast"
        )
    return value


def _describe(exc: ValidationError, where: str) -> str:
    lines = []
    for error in exc.errors():
        loc = [("import" if part == "import_" else str(part)) for part in error["loc"]]
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            lines.append(f"{where}: unknown key '{key}'{did_you_mean(loc[-1], known)}")
        else:
            lines.append(f"{where}: '{key}': {error['msg']}")
    return "\n".join(lines)


def _known_keys(section: list[str]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in section:
        field = model.model_fields.get("import_" if part == "import" else part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [
        ("import" if name == "import_" else name) for name in model.model_fields if name != "source"
    ]
