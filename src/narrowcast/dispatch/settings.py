"""``[dispatch]`` and ``[worker]`` in config.toml: how messages leave, and how often."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from narrowcast.campaigns.model import Duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelLimits(_Section):
    """``[dispatch.channels.email]``: how hard one channel may be pushed."""

    concurrency: int = Field(default=4, ge=1)
    """Batches in flight at once."""
    rate: float | None = Field(default=None, gt=0)
    """Messages per second (a token bucket); none: as fast as the provider answers."""
    batch_size: int | None = Field(default=None, ge=1)
    """Messages per batch; none: the adapter's own maximum (capped at 500)."""


class DispatchSettings(_Section):
    lease: Duration = "2m"
    """How long a claimed batch belongs to its worker before others may take it back."""
    max_attempts: int = Field(default=6, ge=1)
    max_age: Duration = "24h"
    """A message still failing transiently this long after its send time is failed."""
    backoff: Duration = "1m"
    """The first retry's delay; doubled each attempt (with ±25 % jitter), at most an hour."""
    batch_size: int = Field(default=200, ge=1)
    channels: dict[str, ChannelLimits] = {}

    def limits(self, channel: str) -> ChannelLimits:
        return self.channels.get(channel, ChannelLimits())


class WorkerSettings(_Section):
    plan_every: Duration = "1m"
    """How often triggers and due campaigns are planned (also at each cron instant)."""
    snapshot_every: Duration = "1h"
    """How often segment membership is recorded."""
    housekeeping_every: Duration = "30s"
    """How often expired leases and overdue messages are swept."""
    grace: Duration = "30s"
    """On SIGTERM, how long in-flight work may take before the worker leaves it."""
    stale_plan: Duration = "10m"
    """A run still planning after this long was left by a dead worker: another takes it over."""
