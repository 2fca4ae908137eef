"""The send-time curve drawn over the observed response per local hour.

It is the send-time model's own estimate (``optimize.send_time.HourModel``):
the posterior mean response per local send hour of the audience — the
customers the segment's campaigns messaged — in the hierarchical
Beta-Binomial the planner samples from, from the trials whose attribution
window has closed, decayed with age and lent to neighbouring hours.

Before any trial has closed the model has nothing to say, and the curve is
the observed response per hour shrunk toward the response rate of all
messages (every segment, every hour) — a Beta prior worth ``strength``
messages:

    curve(h) = (responses(h) + strength · overall) / (sends(h) + strength)

so an hour with three sends and one click does not draw a 33 % spike, and an
hour with no sends sits at the overall rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from narrowcast.campaigns.model import Campaign
from narrowcast.optimize.learner import goals_of
from narrowcast.optimize.send_time import HourModel
from narrowcast.optimize.trials import read_trials
from narrowcast.planning.settings import PlanningSettings
from narrowcast.reporting.data import HourlyResponse
from narrowcast.store.schema import outbox

EMPIRICAL_LABEL = "smoothed toward the overall rate"
MODEL_LABEL = "send-time model (posterior mean)"


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


def model_curve(
    conn: Connection,
    hourly: HourlyResponse,
    campaigns: Mapping[str, Campaign],
    planning: PlanningSettings,
    now: datetime,
) -> list[float] | None:
    """The send-time model's posterior mean per local hour for the segment's audience;
    None before any of its trials has closed."""
    sent_to = (
        select(outbox.c.customer_id.label("id"))
        .where(outbox.c.campaign.in_(hourly.campaigns), outbox.c.state == "sent")
        .distinct()
    )
    channels = tuple(
        str(c)
        for c in conn.execute(
            select(outbox.c.channel).where(outbox.c.channel.is_not(None)).distinct()
        ).scalars()
    )
    if not channels:
        return None
    log = read_trials(
        conn,
        sent_to,
        goals_of(campaigns),
        channels,
        now,
        planning.learning,
        planning.default_timezone,
    )
    if log.audience.total <= 0:
        return None
    model = HourModel(log, planning.learning, int(planning.default_hour[:2]), seed=0)
    return [float(value) for value in model.curve()]
