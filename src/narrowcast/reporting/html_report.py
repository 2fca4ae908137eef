"""``narrowcast report --html FILE``: one self-contained HTML page of charts.

Everything the page needs is inside it — the charts as inline SVG, one small
stylesheet, no script, font, image or link to anywhere — so the file can be
mailed, archived or opened on a machine without network. Each chart is a
``<figure>`` with a heading, the SVG (``role="img"`` with a title and a
description) and, folded under it, the table of numbers it draws.

``sections_html`` renders the sections alone; the dashboard puts the same
fragment into its own page.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from narrowcast.reporting.panels import Section

STYLE = """
.report-section{margin:2rem 0}
.report-section>h2{font-size:1.25rem;border-bottom:1px solid #d8d8d8;padding-bottom:.3rem}
.intro{color:#444;max-width:52rem}
.panel{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:1rem;
margin:1rem 0;max-width:56rem}
.panel h3{font-size:1rem;margin:0 0 .5rem}
.panel figcaption{color:#444;font-size:.85rem;margin-top:.4rem}
.panel svg.chart{width:100%;height:auto;display:block}
.empty{background:#f4f6fa;border:1px dashed #9aa7bd;border-radius:6px;padding:1.2rem;
color:#33415c}
.empty strong{display:block;margin-bottom:.3rem}
details{margin-top:.6rem}summary{cursor:pointer;color:#1f5fbf}
table.numbers{border-collapse:collapse;font-size:.85rem;margin-top:.4rem}
table.numbers th,table.numbers td{padding:.2rem .6rem;border-bottom:1px solid #e6e6e6;
text-align:left}
table.numbers td.n{text-align:right}
"""

_SECTIONS = """
{% for section in sections %}
<section class="report-section" id="{{ section.key }}" aria-labelledby="{{ section.key }}-h">
<h2 id="{{ section.key }}-h">{{ section.title }}</h2>
<p class="intro">{{ section.intro }}</p>
{% for panel in section.panels %}
<figure class="panel" id="{{ panel.key }}" aria-label="{{ panel.title }}">
{% if panel.svg %}
{{ panel.svg | safe }}
<figcaption>{{ panel.description }}</figcaption>
{% else %}
<h3>{{ panel.title }}</h3>
<div class="empty" role="note"><strong>No data yet</strong>{{ panel.empty }}</div>
{% endif %}
{% if panel.table.rows %}
<details><summary>Numbers behind this chart ({{ panel.table.rows | length }} rows)</summary>
<table class="numbers"><thead><tr>{% for c in panel.table.columns %}<th scope="col">{{ c }}</th>
{% endfor %}</tr></thead><tbody>
{% for row in panel.table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></details>
{% endif %}
</figure>
{% endfor %}
</section>
{% endfor %}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1e1e1e;
background:#f6f6f4;margin:0}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
header h1{font-size:1.6rem;margin:.2rem 0}
.meta{color:#555}
nav.toc a{margin-right:1rem;color:#1f5fbf}
{{ style }}
</style>
</head>
<body><main>
<header>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} UTC · {{ period }}
{%- if only %} · campaign {{ only }}{% endif %}</p>
<nav class="toc" aria-label="Sections">
{% for section in sections %}<a href="#{{ section.key }}">{{ section.title }}</a>
{% endfor %}</nav>
</header>
{{ body }}
</main></body>
</html>
"""

_env = Environment(
    loader=DictLoader({"sections": _SECTIONS, "page": _PAGE}),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def sections_html(sections: list[Section]) -> Markup:
    """The sections' figures, headings and tables (needs ``STYLE`` on the page)."""
    return Markup(_env.get_template("sections").render(sections=sections))


def render_report(
    sections: list[Section],
    *,
    generated: datetime,
    since: datetime | None = None,
    only: str | None = None,
    title: str = "narrowcast report",
) -> str:
    """The whole self-contained page."""
    period = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "all recorded history"
    return _env.get_template("page").render(
        title=title,
        generated=f"{generated:%Y-%m-%d %H:%M}",
        period=period,
        only=only,
        sections=sections,
        style=Markup(STYLE),
        body=sections_html(sections),
    )


def write_report(path: Path, page: str) -> None:
    """Write the page atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
