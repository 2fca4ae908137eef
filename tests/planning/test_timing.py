"""Local send times: fixed hours across DST, windows, quiet hours that wrap midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from narrowcast.planning.timing import Span, allowed, at_local_time, window_end

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_fixed_local_time_is_the_same_wall_time_in_summer_and_winter() -> None:
    winter = at_local_time(datetime(2026, 1, 10, 6, tzinfo=UTC), time(9, 30), MADRID)
    summer = at_local_time(datetime(2026, 7, 10, 6, tzinfo=UTC), time(9, 30), MADRID)
    assert winter == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    assert summer == datetime(2026, 7, 10, 7, 30, tzinfo=UTC)


def test_a_passed_time_today_means_tomorrow() -> None:
    found = at_local_time(datetime(2026, 1, 10, 12, tzinfo=UTC), time(9, 30), MADRID)
    assert found == datetime(2026, 1, 11, 8, 30, tzinfo=UTC)


def test_a_time_skipped_by_spring_forward_moves_forward_by_the_gap() -> None:
    # 2026-03-29 02:00 → 03:00 in Madrid: 02:30 does not exist that day.
    found = at_local_time(datetime(2026, 3, 29, 0, tzinfo=UTC), time(2, 30), MADRID)
    assert found.astimezone(MADRID).strftime("%H:%M") == "03:30"
    assert found == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "inside", "outside"),
    [
        ("09:00-21:00", [time(9), time(20, 59)], [time(8, 59), time(21), time(0)]),
        ("21:00-08:00", [time(21), time(23, 30), time(0), time(7, 59)], [time(8), time(12)]),
    ],
)
def test_spans_include_their_start_and_exclude_their_end(
    span: str, inside: list[time], outside: list[time]
) -> None:
    parsed = Span.parse(span)
    assert all(parsed.contains(t) for t in inside)
    assert not any(parsed.contains(t) for t in outside)


def test_outside_the_window_waits_for_it_to_open() -> None:
    window = Span.parse("09:00-21:00")
    late = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # 23:30 in Madrid
    assert allowed(late, MADRID, window, None) == datetime(2026, 1, 11, 8, tzinfo=UTC)
    early = datetime(2026, 1, 10, 6, 15, tzinfo=UTC)  # 07:15 in Madrid
    assert allowed(early, MADRID, window, None) == datetime(2026, 1, 10, 8, tzinfo=UTC)
    fine = datetime(2026, 1, 10, 12, 5, tzinfo=UTC)
    assert allowed(fine, MADRID, window, None) == fine


def test_quiet_hours_that_wrap_midnight_hold_until_they_end() -> None:
    quiet = Span.parse("21:00-08:00")
    night = datetime(2026, 1, 11, 2, 0, tzinfo=UTC)  # 21:00 in New York
    assert allowed(night, NEW_YORK, None, quiet) == datetime(2026, 1, 11, 13, tzinfo=UTC)


def test_window_and_quiet_hours_together() -> None:
    window = Span.parse("07:00-22:00")
    quiet = Span.parse("21:00-08:00")
    # 07:30 local is inside the window but in quiet hours: 08:00.
    start = datetime(2026, 1, 10, 6, 30, tzinfo=UTC)
    assert allowed(start, MADRID, window, quiet) == datetime(2026, 1, 10, 7, tzinfo=UTC)


def test_no_allowed_minute_is_an_error() -> None:
    with pytest.raises(ValueError, match="leave no time to send"):
        allowed(
            datetime(2026, 1, 10, tzinfo=UTC),
            MADRID,
            Span.parse("09:00-10:00"),
            Span.parse("08:00-11:00"),
        )


def test_the_window_end_is_the_next_closing() -> None:
    window = Span.parse("09:00-21:00")
    inside = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert window_end(inside, MADRID, window) == datetime(2026, 1, 10, 20, tzinfo=UTC)
