"""What a campaign file says, validated: audience, schedule, channels, timing, A/B, goal.

A campaign is one TOML file in ``campaigns/`` (any name but ``segments.toml``)::

    name = "cart_abandoner"
    description = "Remind cart abandoners, push first, email if no push"
    purpose = "marketing"              # or "transactional" (consent rules differ)
    priority = 60                      # wins a contested frequency-cap slot
    segment = "cart_abandoners"        # or: where = "…"; optional exclude = ["vip"]
    on_event = "cart_add"              # or cron / every / at / on_enter
    delay = "1h"
    unless = "ever('order', within='1h')"
    channel = ["push", "email"]        # or "auto"
    send_time = "now"                  # or "auto", or "09:30" (customer's local time)
    window = "09:00-21:00"
    max_per_customer = "every 7d"      # or "once"
    holdout = 0.1
    goal = "order"
    attribution_window = "3d"

    [[variants]]
    name = "gentle"
    [[variants]]
    name = "urgent"
    weight = 2

Defaults are documented on each field below and in the README. Every mistake
is reported with the file, the line and the field (see ``loader.py``).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from narrowcast.segments.language import parse_duration

CHANNEL_KINDS = ("email", "push", "in_app", "web", "webhook")
NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
SCHEDULE_KEYS = ("cron", "every", "at", "on_enter", "on_event")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise ValueError(
            f"{text!r} must be lower-case letters, digits and _, starting with a letter"
        )
    return text


def _zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not an IANA time zone like Europe/Madrid") from None
    return text


def clock(text: str) -> time:
    """``'09:30'`` → 09:30."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time of day like 09:30 (24-hour HH:MM)")
    return time(int(match.group(1)), int(match.group(2)))


def _clock(text: str) -> str:
    clock(text)
    return text


def _window(text: str) -> str:
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not a window like 09:00-21:00")
    start, end = (clock(p) for p in parts)
    if start == end:
        raise ValueError(f"{text!r} is empty: start and end are the same time")
    return text


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2026-12-24T09:00:00+01:00 or …Z")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Name = Annotated[str, AfterValidator(_name)]
Zone = Annotated[str, AfterValidator(_zone)]
Clock = Annotated[str, AfterValidator(_clock)]
Window = Annotated[str, AfterValidator(_window)]
Instant = Annotated[datetime, AfterValidator(_aware)]
TemplatePaths = dict[str, dict[str, str]]
"""channel → part → path relative to templates/."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    """An A/B arm: its own templates under ``templates/<campaign>/<variant>/``."""

    name: Name
    weight: float = Field(default=1.0, gt=0)
    """Share of the non-holdout audience, relative to the other variants' weights."""
    templates: TemplatePaths = {}


class WebTargeting(_Model):
    """``[web]``: who sees a web message, and how."""

    visitor: Literal["new", "returning", "any"] = "any"
    referrer: tuple[Literal["search", "social", "email", "direct"], ...] = ()
    """Empty: any referrer."""
    path: str = "*"
    """A glob over the page path, e.g. ``/products/*``."""
    placement: Literal["banner", "modal", "toast"] = "banner"
    survey: Literal["nps"] | None = None


class Campaign(_Model):
    """One campaign file."""

    name: Name
    description: str = ""
    enabled: bool = True
    priority: int = 0
    """Higher wins when campaigns compete for a customer's frequency-cap slot."""
    purpose: Literal["marketing", "transactional"] = "marketing"
    start: Instant | None = None
    """No occurrence before this instant."""
    end: Instant | None = None
    """No occurrence after this instant."""
    timezone: Zone = "UTC"
    """The zone of ``cron`` schedules."""

    segment: Name | None = None
    """The audience; a triggered campaign without one reaches everyone it triggers on."""
    where: str | None = None
    exclude: tuple[Name, ...] = ()

    cron: str | None = None
    every: Duration | None = None
    at: Instant | None = None
    on_enter: Name | None = None
    on_event: str | None = None
    delay: Duration | None = None
    """Triggers only: wait this long after the event or the entry."""
    unless: str | None = None
    """Triggers only: a rule that cancels the message when it holds at send time."""

    channel: Literal["auto"] | tuple[str, ...] = ("email",)
    """An ordered list (the first usable one is used) or ``"auto"``."""
    send_time: Literal["now", "auto"] | Clock = "now"
    window: Window | None = None
    """Local time of the customer; a message outside it waits for the next opening."""
    expires: Duration = "24h"
    """A message not sent this long after its planned time is expired, not sent late."""
    max_per_customer: str = "once"
    """``"once"`` or ``"every 30d"`` (at most once per period)."""
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)
    """Share of the audience that gets nothing and is measured for uplift."""
    variants: tuple[Variant, ...] = ()
    allocation: Literal["auto", "bandit", "fixed"] = "auto"
    """How variants share the audience: ``bandit`` learns (batched Thompson sampling on
    the goal) and sends the winner to the rest, ``fixed`` keeps the weights; ``auto`` is
    ``bandit`` when the campaign has a goal and two or more variants."""
    goal: str | None = None
    """The conversion event, e.g. ``order``."""
    attribution_window: Duration = "7d"
    templates: TemplatePaths = {}
    web: WebTargeting = WebTargeting()
    in_app_expires: Duration = "7d"
    """How long an in-app message stays in the inbox."""

    @field_validator("channel", mode="before")
    @classmethod
    def _one_channel(cls, value: object) -> object:
        return (value,) if isinstance(value, str) and value != "auto" else value

    @field_validator("channel")
    @classmethod
    def _known_channels(cls, value: object) -> object:
        if isinstance(value, tuple):
            if not value:
                raise ValueError("name at least one channel, or 'auto'")
            if len(set(value)) != len(value):
                raise ValueError("a channel is listed twice")
        return value

    @field_validator("max_per_customer")
    @classmethod
    def _reentry(cls, value: str) -> str:
        reentry_period(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(
                    f"{value!r} is not a cron expression like '0 9 * * MON' "
                    "(minute hour day-of-month month day-of-week)"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        schedules = [key for key in SCHEDULE_KEYS if getattr(self, key) is not None]
        if len(schedules) != 1:
            found = ", ".join(schedules) if schedules else "none"
            raise ValueError(
                f"give exactly one schedule: cron, every, at, on_enter or on_event (found {found})"
            )
        triggered = self.on_enter is not None or self.on_event is not None
        if self.segment is not None and self.where is not None:
            raise ValueError('give the audience as segment = "NAME" or where = "RULE", not both')
        if not triggered and self.segment is None and self.where is None:
            raise ValueError(
                'give the audience: segment = "NAME" or where = "RULE" '
                "(only triggered campaigns may leave it out: then it is everyone they trigger on)"
            )
        if not triggered and (self.delay is not None or self.unless is not None):
            raise ValueError("delay and unless belong to triggers (on_enter, on_event)")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("two variants have the same name")
        if (
            self.attribution_window
            and self.goal is None
            and "attribution_window" in (self.model_fields_set)
        ):
            raise ValueError("attribution_window needs a goal (the conversion event)")
        if self.allocation == "bandit" and (self.goal is None or len(self.variants) < 2):
            raise ValueError(
                'allocation = "bandit" learns which variant reaches the goal: it needs a goal '
                "and at least two [[variants]]"
            )
        return self

    @property
    def schedule_kind(self) -> str:
        return next(key for key in SCHEDULE_KEYS if getattr(self, key) is not None)

    @property
    def triggered(self) -> bool:
        return self.schedule_kind in ("on_enter", "on_event")


def reentry_period(text: str) -> timedelta | None:
    """``"once"`` → None (ever); ``"every 30d"`` → 30 days."""
    if text.strip() == "once":
        return None
    match = re.fullmatch(r"every\s+(\S+)", text.strip())
    if match is None:
        raise ValueError(f'{text!r}: write "once" or "every 30d"')
    return parse_duration(match.group(1))
