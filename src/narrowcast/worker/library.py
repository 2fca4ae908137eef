"""The campaigns a worker runs: reloaded when their files change, last good version kept.

A marketer editing a campaign file while the worker runs must not stop it,
and a half-saved or broken file must not stop the campaign it describes:
the worker reports the problem and keeps running the last version of that
file that was valid. A file that is deleted stops its campaign; its pending
messages are canceled when they come up (the gate checks the campaign).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from narrowcast.campaigns.loader import campaign_paths, load_campaigns
from narrowcast.campaigns.model import Campaign
from narrowcast.render.templates import Templates
from narrowcast.segments.definitions import DefinitionError, Definitions, load_definitions

log = logging.getLogger("narrowcast.worker")


@dataclass
class CampaignLibrary:
    folder: Path
    channels: tuple[str, ...]
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    definitions: Definitions = field(default_factory=lambda: load_definitions(Path("/-")))
    problems: list[str] = field(default_factory=list)
    _by_path: dict[Path, Campaign] = field(default_factory=dict)
    _stamps: dict[Path, float] = field(default_factory=dict)

    def reload(self, *, force: bool = False) -> bool:
        """Re-read the files if any changed (or ``force``); True when something changed."""
        segments_file = self.folder / "segments.toml"
        stamps = self._current_stamps(segments_file)
        if not force and stamps == self._stamps:
            return False
        self._stamps = stamps
        problems: list[str] = []
        try:
            self.definitions = load_definitions(segments_file)
        except DefinitionError as exc:
            problems += exc.problems
            log.error(
                "segments file has problems; keeping the previous segments:\n  %s",
                "\n  ".join(exc.problems),
            )
        paths = campaign_paths(self.folder, set(self.definitions.files))
        by_path: dict[Path, Campaign] = {}
        for path in paths:
            loaded = load_campaigns([path], self.channels)
            if loaded.files:
                (found,) = loaded.files.values()
                by_path[path] = found.campaign
            else:
                problems += loaded.problems
                previous = self._by_path.get(path)
                if previous is not None:
                    by_path[path] = previous
                    log.error(
                        "%s is invalid; campaign %s keeps running as it was:\n  %s",
                        path,
                        previous.name,
                        "\n  ".join(loaded.problems),
                    )
                else:
                    log.error(
                        "%s is invalid and was never loaded:\n  %s",
                        path,
                        "\n  ".join(loaded.problems),
                    )
        campaigns: dict[str, Campaign] = {}
        for path, campaign in sorted(by_path.items()):
            if campaign.name in campaigns:
                problems.append(f"{path}: campaign '{campaign.name}' is defined twice; ignored")
                continue
            campaigns[campaign.name] = campaign
        self._by_path = by_path
        self.campaigns = campaigns
        self.problems = problems
        log.info("loaded %d campaigns (%d problems)", len(campaigns), len(problems))
        return True

    def _current_stamps(self, segments_file: Path) -> dict[Path, float]:
        files = list(self.folder.glob("*.toml")) if self.folder.is_dir() else []
        if segments_file.exists():
            files.append(segments_file)
        stamps = {}
        for path in files:
            try:
                stamps[path] = path.stat().st_mtime
            except OSError:
                continue
        return stamps


@dataclass
class TemplateFolder:
    """The worker's templates: recompiled when files change, only once they all compile.

    Compiled templates are cached for the life of the process, so without this
    an edited template would not be used until a restart. A change that does
    not compile (a half-saved file, a typo in a tag) is reported and the
    previous templates stay in use until the folder compiles again.
    """

    templates: Templates
    problems: list[str] = field(default_factory=list)
    _stamps: dict[str, float] | None = None

    def reload(self) -> bool:
        """Recompile if any template changed and all compile; True when recompiled."""
        stamps = self._current_stamps()
        if self._stamps is None:
            self._stamps = stamps
            return False
        if stamps == self._stamps:
            return False
        changed = [name for name, stamp in stamps.items() if self._stamps.get(name) != stamp]
        self._stamps = stamps
        # A fresh folder object: the running one has the old files compiled and cached.
        errors = Templates(self.templates.root).check_syntax(changed)
        if errors:
            self.problems = [str(error) for error in errors]
            log.error(
                "templates changed but do not compile; still using the previous ones:\n  %s",
                "\n  ".join(self.problems),
            )
            return False
        self.problems = []
        self.templates.reload()
        log.info("templates reloaded (%d changed)", len(changed))
        return True

    def _current_stamps(self) -> dict[str, float]:
        stamps = {}
        for name in self.templates.names():
            try:
                stamps[name] = (self.templates.root / name).stat().st_mtime
            except OSError:
                continue
        return stamps
