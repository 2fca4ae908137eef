"""Errors of campaign files.

    NarrowcastError
    └── CampaignError            campaign files cannot be loaded or say something invalid
        └── UnknownCampaign      a command named a campaign that no file defines

Messages name the file and line (``campaigns/winback.toml:4``), the field,
what was expected and what to try.
"""

from __future__ import annotations

from narrowcast.errors import NarrowcastError


class CampaignError(NarrowcastError):
    """Campaign files are broken; lists every problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        super().__init__(f"campaigns: {count}:\n  " + "\n  ".join(problems))


class UnknownCampaign(CampaignError):
    """No campaign file defines the name a command was given."""
