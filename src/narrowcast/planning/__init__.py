"""Planning: who gets which message, on which channel, when — for dry-run and the worker."""

from narrowcast.planning.planner import STAGES, Dropped, Plan, PlanEntry, Planner, Summary
from narrowcast.planning.settings import FrequencySettings, PlanningSettings

__all__ = [
    "STAGES",
    "Dropped",
    "FrequencySettings",
    "Plan",
    "PlanEntry",
    "Planner",
    "PlanningSettings",
    "Summary",
]
