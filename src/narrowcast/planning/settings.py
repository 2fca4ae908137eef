"""``[planning]`` in config.toml: the operator's rules every campaign plans under."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from narrowcast.campaigns.model import Clock, Duration, Window, Zone


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FrequencySettings(_Section):
    """``[planning.frequency]``: at most this many marketing messages per customer.

    Counted over the last 24 hours and 7 days, across campaigns; ``per_channel_*``
    apply to each channel on its own. Transactional messages are exempt. When
    campaigns compete, the higher ``priority`` wins the slot.
    """

    per_day: int | None = Field(default=2, ge=1)
    per_week: int | None = Field(default=5, ge=1)
    per_channel_per_day: int | None = Field(default=None, ge=1)
    per_channel_per_week: int | None = Field(default=None, ge=1)


class PlanningSettings(_Section):
    default_hour: Clock = "10:00"
    """Send time when ``send_time = "auto"`` has no data at all."""
    default_timezone: Zone = "UTC"
    """For customers whose time zone is unknown."""
    quiet_hours: Window | Literal[""] = "21:00-08:00"
    """Local time in which no marketing message is sent; held to the next allowed minute.
    ``""``: none."""
    frequency: FrequencySettings = FrequencySettings()
    channel_order: tuple[str, ...] = ("push", "email", "in_app", "web", "webhook")
    """Preference for ``channel = "auto"`` when the data cannot decide (cold start, ties)."""
    engagement_days: int = Field(default=90, ge=1)
    """How far back ``auto`` choices look at results."""
    smoothing: float = Field(default=20.0, ge=0)
    """How many messages' worth of the all-customer rate a segment's rate is pulled toward."""
    app_recent: Duration = "30d"
    """An app session within this period makes a customer reachable in-app."""
    web_recent: Duration = "30d"
    """A web session within this period makes a customer reachable by web messages."""
    batch_size: int = Field(default=5000, ge=1)
    """Customers read per batch while planning."""
