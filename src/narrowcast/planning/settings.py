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


class LearningSettings(_Section):
    """``[planning.learning]``: how ``auto`` send times, channels and A/B tests learn.

    Every message sent is a trial; its reward is a click on it or the campaign's
    goal within the attribution window (opens are not: machine opens inflate them).
    """

    half_life_days: float = Field(default=90.0, gt=0)
    """Weight of a result halves with every this many days of age."""
    history_days: int = Field(default=365, ge=1)
    """Results older than this are not read at all."""
    prior_strength: float = Field(default=20.0, gt=0)
    """How many messages' worth a level's estimate weighs in the level below it
    (all customers → segment → customer)."""
    customer_prior_strength: float = Field(default=30.0, gt=0)
    """The same, for the segment's estimate in a customer's own. Weaker, and every
    customer with a handful of messages explores on their own: in
    ``bench/optimise_sim.py`` 5 closed 0.48 of the gap to the segment oracle, 30 closed 0.64."""
    neighbour_weight: float = Field(default=0.25, ge=0, le=1)
    """Share of an hour's evidence lent to each neighbouring hour (response curves are smooth)."""
    exploration: float = Field(default=0.1, ge=0, le=1)
    """Share of send-time choices drawn uniformly over the allowed hours."""
    channel_exploration: float = Field(default=0.05, ge=0, le=1)
    """Share of channel choices drawn uniformly over the usable channels."""
    min_customer_messages: int = Field(default=5, ge=0)
    """A customer's own results count only once they have had this many messages."""
    channel_cost: dict[str, float] = Field(default_factory=dict)
    """Cost of one message per channel, in units of one response (e.g. ``sms = 0.02``)."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    """An A/B test stops when this sure that no other variant is better by ``min_lift``."""
    min_lift: float = Field(default=0.01, gt=0)
    """Relative improvement in conversion not worth continuing a test for (0.01 = 1 %)."""
    min_variant_sends: int = Field(default=100, ge=0)
    """Sends per variant (with their attribution window closed) before a winner is declared."""


class ControlSettings(_Section):
    """``[planning.control]``: the global control group — customers who get no marketing.

    Chosen by a stable hash of the customer id and the current period, so that
    membership holds for ``reshuffle_days`` and only then changes.
    """

    share: float = Field(default=0.05, ge=0, lt=1)
    reshuffle_days: int = Field(default=90, ge=1)
    """The group is drawn afresh at most this often (periods count from 1970-01-01)."""
    salt: str = "narrowcast"
    """Change it to draw a different group now."""


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
    app_recent: Duration = "30d"
    """An app session within this period makes a customer reachable in-app."""
    web_recent: Duration = "30d"
    """A web session within this period makes a customer reachable by web messages."""
    batch_size: int = Field(default=5000, ge=1)
    """Customers read per batch while planning."""
    learning: LearningSettings = LearningSettings()
    control: ControlSettings = ControlSettings()
