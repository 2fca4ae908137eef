"""Campaigns: the files marketers write, validated, and their schedules."""

from narrowcast.campaigns.errors import CampaignError, UnknownCampaign
from narrowcast.campaigns.loader import CampaignFile, Loaded, campaign_paths, load_campaigns
from narrowcast.campaigns.model import CHANNEL_KINDS, Campaign, Variant, WebTargeting
from narrowcast.campaigns.schedule import latest_occurrence, next_occurrence, occurrences

__all__ = [
    "CHANNEL_KINDS",
    "Campaign",
    "CampaignError",
    "CampaignFile",
    "Loaded",
    "UnknownCampaign",
    "Variant",
    "WebTargeting",
    "campaign_paths",
    "latest_occurrence",
    "load_campaigns",
    "next_occurrence",
    "occurrences",
]
