"""The learned decisions of one campaign plan, built once before its customers are planned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from hashlib import blake2b

from sqlalchemy import Connection, Select

from narrowcast.campaigns.model import Campaign, clock
from narrowcast.optimize.beta import prefix
from narrowcast.optimize.channels import ChannelModel
from narrowcast.optimize.send_time import HourModel
from narrowcast.optimize.trials import Goal, TrialLog, read_trials
from narrowcast.optimize.variants import (
    Allocation,
    allocate,
    arm_results,
    declared_winner,
    fixed,
)
from narrowcast.planning.settings import PlanningSettings
from narrowcast.segments.language import parse_duration


class Learner:
    """Send-hour and channel models, and the A/B allocation, of one campaign as of ``now``."""

    def __init__(
        self,
        conn: Connection,
        campaign: Campaign,
        audience: Select[tuple[str]],
        now: datetime,
        settings: PlanningSettings,
        occurrence: str,
        goals: Mapping[str, Goal] | None = None,
    ) -> None:
        self.campaign = campaign
        self.occurrence = occurrence
        self.tag = f"{campaign.name}|{occurrence}"
        self.channel_prefix = prefix(self.tag, "channel")
        self.hour_prefix = prefix(self.tag, "hour")
        """Hash prefixes of each customer's uniform numbers (``beta.unit_of``)."""
        seed = int.from_bytes(blake2b(self.tag.encode(), digest_size=8).digest(), "big")
        learning = settings.learning
        self.hours: HourModel | None = None
        self.channels: ChannelModel | None = None
        self.log: TrialLog | None = None
        if campaign.channel == "auto" or campaign.send_time == "auto":
            known = dict(goals or {})
            known.setdefault(campaign.name, goal_of(campaign))
            self.log = read_trials(
                conn,
                audience,
                known,
                settings.channel_order,
                now,
                learning,
                settings.default_timezone,
            )
            if campaign.send_time == "auto":
                default = clock(settings.default_hour).hour
                self.hours = HourModel(self.log, learning, default, seed)
            if campaign.channel == "auto":
                self.channels = ChannelModel(self.log, learning, seed)
        self.allocation: Allocation | None = None
        if len(campaign.variants) > 1:
            if adaptive(campaign):
                arms = arm_results(conn, campaign, now)
                declared = declared_winner(conn, campaign)
                self.allocation = allocate(arms, learning, seed, declared)
            else:
                self.allocation = fixed(campaign)


def goal_of(campaign: Campaign) -> Goal:
    return Goal(campaign.goal, parse_duration(campaign.attribution_window))


def goals_of(campaigns: Mapping[str, Campaign]) -> dict[str, Goal]:
    """What rewards each campaign's messages, for reading the result log."""
    return {name: goal_of(c) for name, c in campaigns.items()}


def adaptive(campaign: Campaign) -> bool:
    """Whether the campaign's variants are allocated by the bandit (``allocation``)."""
    if campaign.allocation == "fixed" or len(campaign.variants) < 2:
        return False
    return campaign.allocation == "bandit" or campaign.goal is not None


__all__ = ["Learner", "adaptive", "goal_of", "goals_of"]
