"""Named segments and score settings: ``campaigns/segments.toml`` over a built-in library.

A segments file::

    include = ["more-segments.toml"]     # optional: more files with [segments.*] tables
    builtins = true                      # false hides the built-in library

    [attributes]                         # optional: declare imported attribute types
    lifestyle = "text"

    [scores.intent]                      # optional: see scores.py for every setting
    hot = "3d"

    [segments.vip_madrid]
    description = "VIPs in Madrid"
    where = "segment('vip') and in_geo('ES/Madrid')"

Segment names are lower-case letters, digits and ``_``. A segment defined in
the file replaces a built-in one of the same name (``segments list`` says
which is which); the built-in library lives in ``library.toml`` beside this
module and is a good place to copy from.

Every problem — TOML syntax, an unknown key, a bad name, a duplicate, a bad
duration in a score — is reported with ``file:line`` and all problems of a
file are reported together. Rules themselves are checked against the store's
catalogue by ``Definitions.problems`` (they need to know the attributes and
event types), again all at once.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection

from narrowcast.errors import NarrowcastError, did_you_mean
from narrowcast.segments.catalog import load_catalog
from narrowcast.segments.errors import RuleError
from narrowcast.segments.language import Catalog, Node, ValueType, parse_rule
from narrowcast.segments.scores import ScoreSettings
from narrowcast.toml_lines import TomlLines, located_errors

DEFAULT_PATH = Path("campaigns") / "segments.toml"
NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
BUILTIN = "built-in"


class DefinitionError(NarrowcastError):
    """A segments file cannot be read or says something invalid; lists every problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        super().__init__(f"segment definitions: {count}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class SegmentDefinition:
    name: str
    where: str
    description: str
    origin: str
    """``file:line`` of the rule, for error messages."""
    builtin: bool


@dataclass(frozen=True)
class Definitions:
    """Every named segment, the score settings and declared attribute types."""

    segments: Mapping[str, SegmentDefinition]
    scores: ScoreSettings = field(default_factory=ScoreSettings)
    attribute_types: Mapping[str, ValueType] = field(default_factory=dict)
    source: Path | None = None
    files: tuple[Path, ...] = ()
    """Every file the definitions were read from: the segments file and its includes."""

    def catalog(self, conn: Connection) -> Catalog:
        """What rules may refer to in this store, with these segments and attributes."""
        catalog = load_catalog(conn, {name: d.where for name, d in self.segments.items()})
        return replace(
            catalog,
            attributes={**catalog.attributes, **self.attribute_types},
            segment_origins={name: d.origin for name, d in self.segments.items()},
        )

    def rule(self, name: str, catalog: Catalog) -> Node:
        """The checked rule of the named segment; ``RuleError`` names file and line."""
        definition = self.segments.get(name)
        if definition is None:
            hint = did_you_mean(name, self.segments)
            raise RuleError(f"unknown segment '{name}'{hint} — see `narrowcast segments list`")
        return parse_rule(
            definition.where, catalog, origin=definition.origin, _stack=(definition.name,)
        )

    def problems(self, conn: Connection) -> list[RuleError]:
        """Every rule that does not check against this store (all of them, not the first)."""
        catalog = self.catalog(conn)
        found: list[RuleError] = []
        for name in self.segments:
            try:
                self.rule(name, catalog)
            except RuleError as exc:
                found.append(exc)
        return found


# --- reading files ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Segment(_Model):
    where: str
    description: str = ""


class _File(_Model):
    include: tuple[str, ...] = ()
    builtins: bool = True
    attributes: dict[str, Literal["number", "text", "bool", "date"]] = {}
    scores: ScoreSettings = ScoreSettings()
    segments: dict[str, _Segment] = {}


class _Included(_Model):
    segments: dict[str, _Segment] = {}


def load_definitions(path: Path = DEFAULT_PATH, *, required: bool = False) -> Definitions:
    """The built-in library overlaid with the segments file ``path``.

    A missing file means the built-in library alone, unless ``required``.
    """
    builtin = _builtin()
    chosen = path
    if not chosen.exists():
        if required:
            raise DefinitionError([f"{chosen}: no such segments file"])
        return builtin
    problems: list[str] = []
    main = _read(chosen, _File, problems)
    if main is None:
        raise DefinitionError(problems)
    assert isinstance(main, _File)
    segments: dict[str, SegmentDefinition] = dict(builtin.segments) if main.builtins else {}
    mine: dict[str, SegmentDefinition] = {}
    _collect(chosen, main.segments, mine, problems)
    files = [chosen]
    for include in main.include:
        included_path = chosen.parent / include
        files.append(included_path)
        included = _read(included_path, _Included, problems)
        if isinstance(included, _Included):
            _collect(included_path, included.segments, mine, problems)
    if problems:
        raise DefinitionError(problems)
    segments.update(mine)
    return Definitions(segments, main.scores, dict(main.attributes), chosen, tuple(files))


def _builtin() -> Definitions:
    library = resources.files("narrowcast.segments").joinpath("library.toml")
    text = library.read_text(encoding="utf-8")
    lines = TomlLines(text)
    raw = tomllib.loads(text)
    segments = {
        name: SegmentDefinition(
            name=name,
            where=entry["where"],
            description=entry.get("description", ""),
            origin=f"{BUILTIN} segment '{name}' (library.toml:{lines.line(('segments', name))})",
            builtin=True,
        )
        for name, entry in raw["segments"].items()
    }
    return Definitions(segments)


def _read(path: Path, model: type[_Model], problems: list[str]) -> _Model | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{path}: cannot read the segments file: {exc.strerror}")
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
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(located_errors(path, text, exc, model))
        return None


def _collect(
    path: Path,
    entries: Mapping[str, _Segment],
    into: dict[str, SegmentDefinition],
    problems: list[str],
) -> None:
    lines = TomlLines(path.read_text(encoding="utf-8"))
    for name, entry in entries.items():
        at = f"{path}:{lines.line(('segments', name)) or 1}"
        if not NAME.fullmatch(name):
            problems.append(
                f"{at}: segment name '{name}' must be lower-case letters, digits and _ "
                "(starting with a letter, at most 100 characters)"
            )
            continue
        if name in into:
            problems.append(f"{at}: segment '{name}' is already defined at {into[name].origin}")
            continue
        if not entry.where.strip():
            problems.append(f"{at}: segment '{name}' has an empty 'where' rule")
            continue
        rule_line = lines.line(("segments", name, "where")) or 1
        if entry.where.startswith("\n") or _opens_multiline(path, rule_line):
            rule_line += 1  # the rule starts on the line after the opening quotes
        into[name] = SegmentDefinition(
            name=name,
            where=entry.where.strip(),
            description=entry.description.strip(),
            origin=f"{path}:{rule_line}",
            builtin=False,
        )


def _opens_multiline(path: Path, line: int) -> bool:
    text = path.read_text(encoding="utf-8").splitlines()
    if not 0 < line <= len(text):
        return False
    rest = text[line - 1].split("=", 1)[-1].strip()
    return rest in ('"""', "'''")
