"""The send-time curve drawn over the observed response per local hour.

Until the learned model is hooked up here, the curve is the observed response
per hour shrunk toward the response rate of all messages (every segment, every
hour) — a Beta prior worth ``strength`` messages:

    curve(h) = (responses(h) + strength · overall) / (sends(h) + strength)

so an hour with three sends and one click does not draw a 33 % spike, and an
hour with no sends sits at the overall rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from narrowcast.reporting.data import HourlyResponse

EMPIRICAL_LABEL = "smoothed toward the overall rate"


def overall_rate(found: Sequence[HourlyResponse]) -> float:
    """Responses per message sent over every segment and hour (0 without sends)."""
    sends = sum(h.total_sends for h in found)
    return sum(h.total_responses for h in found) / sends if sends else 0.0


def smoothed_curve(hourly: HourlyResponse, overall: float, strength: float) -> list[float]:
    """Beta-smoothed response rate per local hour, 0–23."""
    return [
        (r + strength * overall) / (n + strength)
        for n, r in zip(hourly.sends, hourly.responses, strict=True)
    ]
