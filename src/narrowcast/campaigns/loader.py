"""Reading every campaign file of a folder; one broken file never hides the others.

``load_campaigns`` returns the campaigns that are valid as files and the
problems of the others, each ``file:line: 'field': what is wrong``. Checks that
need the store or the templates (segments exist, rules check, templates
render) are in ``validation.py``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from narrowcast.campaigns.errors import CampaignError, UnknownCampaign
from narrowcast.campaigns.model import CHANNEL_KINDS, Campaign
from narrowcast.errors import did_you_mean
from narrowcast.toml_lines import TomlLines, located_errors

SEGMENTS_FILE = "segments.toml"


@dataclass(frozen=True)
class CampaignFile:
    campaign: Campaign
    path: Path
    lines: TomlLines

    def where(self, *key: str | int) -> str:
        """``file:line`` of a key of this campaign (or of the file's top)."""
        return f"{self.path}:{self.lines.line(key) or 1}"


@dataclass
class Loaded:
    files: dict[str, CampaignFile] = field(default_factory=dict)
    """By campaign name."""
    problems: list[str] = field(default_factory=list)

    @property
    def campaigns(self) -> list[Campaign]:
        return [f.campaign for f in self.files.values()]

    def get(self, name: str) -> CampaignFile:
        found = self.files.get(name)
        if found is None:
            hint = did_you_mean(name, self.files)
            raise UnknownCampaign(
                [f"no campaign named '{name}'{hint} — see `narrowcast campaigns list`"]
            )
        return found

    def raise_problems(self) -> None:
        if self.problems:
            raise CampaignError(self.problems)


def campaign_paths(folder: Path, segment_files: set[Path] | None = None) -> list[Path]:
    """Campaign files of ``folder``: every ``*.toml`` but the segments files."""
    if not folder.is_dir():
        return []
    skip = {(folder / SEGMENTS_FILE).resolve(), *(p.resolve() for p in segment_files or ())}
    return sorted(p for p in folder.glob("*.toml") if p.resolve() not in skip)


def load_campaigns(paths: list[Path], channels: tuple[str, ...] = CHANNEL_KINDS) -> Loaded:
    """Every campaign in ``paths``; problems collected, not raised."""
    loaded = Loaded()
    for path in paths:
        found = _load(path, channels, loaded.problems)
        if found is None:
            continue
        name = found.campaign.name
        if name in loaded.files:
            loaded.problems.append(
                f"{found.where('name')}: campaign '{name}' is already defined in "
                f"{loaded.files[name].where('name')} — names must be unique"
            )
            continue
        loaded.files[name] = found
    return loaded


def _load(path: Path, channels: tuple[str, ...], problems: list[str]) -> CampaignFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{path}: cannot read the campaign file: {exc.strerror}")
        return None
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
        return None
    try:
        campaign = Campaign.model_validate(raw)
    except ValidationError as exc:
        problems.extend(located_errors(path, text, exc, Campaign))
        return None
    found = CampaignFile(campaign, path, TomlLines(text))
    before = len(problems)
    if isinstance(campaign.channel, tuple):
        for name in campaign.channel:
            if name not in channels:
                problems.append(
                    f"{found.where('channel')}: 'channel': unknown channel '{name}'"
                    f"{did_you_mean(name, channels)} (known: {', '.join(channels)})"
                )
    for kind in (*campaign.templates, *(k for v in campaign.variants for k in v.templates)):
        if kind not in channels:
            problems.append(
                f"{found.where('templates')}: 'templates': unknown channel '{kind}'"
                f"{did_you_mean(kind, channels)}"
            )
    return found if len(problems) == before else None
