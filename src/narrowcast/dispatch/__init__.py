"""Dispatch: the outbox's state machine and the loop that sends due messages."""

from narrowcast.dispatch.clock import Clock, DatabaseClock, FixedClock
from narrowcast.dispatch.settings import ChannelLimits, DispatchSettings, WorkerSettings

__all__ = [
    "ChannelLimits",
    "Clock",
    "DatabaseClock",
    "DispatchSettings",
    "FixedClock",
    "WorkerSettings",
]
