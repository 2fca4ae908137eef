"""Segment rules: a small language compiled to one SQL query per segment."""

from narrowcast.segments.catalog import load_catalog
from narrowcast.segments.compiler import Compiler
from narrowcast.segments.errors import RuleError, SegmentCycle
from narrowcast.segments.language import Catalog, parse_duration, parse_rule

__all__ = [
    "Catalog",
    "Compiler",
    "RuleError",
    "SegmentCycle",
    "load_catalog",
    "parse_duration",
    "parse_rule",
]
