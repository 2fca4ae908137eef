"""Reports people can look at: charts of what the campaigns did, as HTML with inline SVG."""

from narrowcast.reporting.html_report import STYLE, render_report, sections_html, write_report
from narrowcast.reporting.panels import Panel, Section, Table, build_sections

__all__ = [
    "STYLE",
    "Panel",
    "Section",
    "Table",
    "build_sections",
    "render_report",
    "sections_html",
    "write_report",
]
