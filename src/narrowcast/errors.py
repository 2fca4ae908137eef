"""The root of every error narrowcast raises on purpose.

    NarrowcastError     click.ClickException: message, exit_code
    ├── ConfigError     config.toml is unreadable or invalid     narrowcast.config
    ├── StoreError      the database cannot be reached/upgraded  narrowcast.store.errors
    ├── ImportFailed    an import was refused, nothing stored    narrowcast.ingest.errors
    ├── RenderError     a template cannot become a message       narrowcast.render.errors
    └── LinkError       a signed link token cannot be trusted    narrowcast.render.errors

Every one of them is a mistake a person can fix, so it subclasses
``click.ClickException``: the CLI prints the message and exits with
``exit_code``, never a traceback. Bugs stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import click


class NarrowcastError(click.ClickException):
    """A problem the user can act on; the message says what and where."""

    exit_code = 1


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` — did you mean 'x'?`` when a close match exists, else ``""``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{matches[0]}'?" if matches else ""
