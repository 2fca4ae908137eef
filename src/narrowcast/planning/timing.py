"""Send instants in the customer's local time: fixed hours, windows and quiet hours.

All arithmetic is done on local wall-clock times with ``zoneinfo`` and then
converted to UTC, so "09:30" is 09:30 in Madrid in summer and in winter. A
local time that does not exist on a spring-forward day moves forward by the
gap (02:30 becomes 03:30); an ambiguous autumn time is its first occurrence.

Windows and quiet hours are ``HH:MM-HH:MM`` ranges of local time; a range
whose end is before its start wraps past midnight (``21:00-08:00``). A
candidate instant outside the campaign's window, or inside quiet hours,
moves to the next minute that is allowed by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from narrowcast.campaigns.model import clock


@dataclass(frozen=True)
class Span:
    """A daily range of local time, ``start`` included and ``end`` excluded."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Span:
        start, end = (clock(part) for part in text.split("-"))
        return cls(start, end)

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # wraps past midnight

    def next_start(self, local: datetime) -> datetime:
        """The first instant at or after ``local`` when the span opens."""
        opening = local.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        return opening if opening >= local else opening + timedelta(days=1)

    def next_end(self, local: datetime) -> datetime:
        """The first instant at or after ``local`` when the span closes."""
        closing = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return closing if closing > local else closing + timedelta(days=1)


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone)


def at_local_time(after: datetime, moment: time, zone: ZoneInfo) -> datetime:
    """The first instant at or after ``after`` whose local time is ``moment`` (UTC)."""
    here = after.astimezone(zone)
    candidate = _wall(here.replace(hour=moment.hour, minute=moment.minute, second=0, microsecond=0))
    if candidate < after:
        candidate = _wall(
            (here + timedelta(days=1)).replace(
                hour=moment.hour, minute=moment.minute, second=0, microsecond=0
            )
        )
    return candidate.astimezone(UTC)


def allowed(instant: datetime, zone: ZoneInfo, window: Span | None, quiet: Span | None) -> datetime:
    """``instant``, or the next minute inside ``window`` and outside ``quiet`` (UTC)."""
    candidate = instant.astimezone(zone)
    for _ in range(8):  # each move lands on a boundary; a few settle any two spans
        moved = False
        if window is not None and not window.contains(candidate.timetz().replace(tzinfo=None)):
            candidate = _wall(window.next_start(candidate))
            moved = True
        if quiet is not None and quiet.contains(candidate.timetz().replace(tzinfo=None)):
            candidate = _wall(quiet.next_end(candidate))
            moved = True
        if not moved:
            return candidate.astimezone(UTC)
    raise ValueError(f"the window {window} and quiet hours {quiet} leave no time to send")


def window_end(instant: datetime, zone: ZoneInfo, window: Span) -> datetime:
    """When the window that ``instant`` falls in closes (UTC)."""
    return _wall(window.next_end(instant.astimezone(zone))).astimezone(UTC)


def _wall(candidate: datetime) -> datetime:
    """A local wall time that really exists: spring-forward gaps move forward."""
    zone = candidate.tzinfo
    assert zone is not None
    round_trip = candidate.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != candidate.replace(tzinfo=None):
        # In a gap: the first minute after it is the same UTC instant's wall time.
        return round_trip
    return candidate
