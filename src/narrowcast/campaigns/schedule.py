"""When a scheduled campaign runs: the occurrences of its cron, every or at schedule.

Occurrences are instants every worker computes alike, so that a run's key
(campaign, occurrence) is the same wherever it is planned:

* ``cron = "0 9 * * MON"`` — standard cron (0 or 7 is Sunday), evaluated in
  the campaign's ``timezone``: 09:00 in Madrid is 08:00 UTC in winter and
  07:00 in summer. A local time skipped by a DST change does not occur.
* ``every = "6h"`` — multiples of the period counted from ``start`` (or from
  1970-01-01T00:00Z when there is no start).
* ``at = 2026-12-24T09:00:00+01:00`` — once.

Triggered campaigns (``on_event``, ``on_enter``) have no occurrences; the
worker checks them on every tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from narrowcast.campaigns.model import Campaign
from narrowcast.segments.language import parse_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def occurrences(campaign: Campaign, after: datetime, until: datetime) -> Iterator[datetime]:
    """The campaign's scheduled instants in (after, until], in UTC, oldest first."""
    after, until = after.astimezone(UTC), until.astimezone(UTC)
    if campaign.start is not None:
        after = max(after, campaign.start.astimezone(UTC) - timedelta(microseconds=1))
    if campaign.end is not None:
        until = min(until, campaign.end.astimezone(UTC))
    if after >= until:
        return
    if campaign.at is not None:
        at = campaign.at.astimezone(UTC)
        if after < at <= until:
            yield at
    elif campaign.every is not None:
        period = parse_duration(campaign.every)
        anchor = campaign.start.astimezone(UTC) if campaign.start else _EPOCH
        k = max((after - anchor) // period + 1, 0)
        while (instant := anchor + k * period) <= until:
            if instant > after:
                yield instant
            k += 1
    elif campaign.cron is not None:
        zone = ZoneInfo(campaign.timezone)
        times = croniter(campaign.cron, after.astimezone(zone))
        while (instant := times.get_next(datetime).astimezone(UTC)) <= until:
            yield instant


def next_occurrence(campaign: Campaign, after: datetime) -> datetime | None:
    """The first scheduled instant after ``after`` (within ten years), or None."""
    return next(occurrences(campaign, after, after + timedelta(days=3653)), None)


def latest_occurrence(campaign: Campaign, at: datetime, lookback: timedelta) -> datetime | None:
    """The most recent scheduled instant in (at − lookback, at], or None."""
    found = None
    for found in occurrences(campaign, at - lookback, at):  # noqa: B007
        pass
    return found
