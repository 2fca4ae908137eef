"""The HTML of the pages people open from a message: plain, fast, no JavaScript.

Server-rendered with Jinja2 under autoescape, so a customer's name or address
(``<script>`` included) is always text, never markup. The strings come from
``locale.strings``; their ``{fields}`` are filled before escaping, so the
filled value is escaped with the rest. One small inline stylesheet; the
``Content-Security-Policy`` sent with every page forbids scripts, frames and
posting anywhere but back here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import DictLoader, Environment, StrictUndefined

from narrowcast.api.locale import strings

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
"""Sent with every page: the token in the URL must not leak, be cached, or be framed."""

_LAYOUT = """<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ title }}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;color:#222;background:#f6f6f4;margin:0}
main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem;text-align:left;
border-bottom:1px solid #ddd}button{font:inherit;padding:.6rem 1.2rem;border:0;
border-radius:6px;background:#1f5fbf;color:#fff;cursor:pointer;margin-top:1rem}
.notice{background:#e8f4ea;border-left:4px solid #2e7d32;padding:.6rem 1rem}
.muted{color:#555;font-size:.9rem}td:first-child::first-letter{text-transform:uppercase}
</style>
</head>
<body><main>{% block main %}{% endblock %}</main></body>
</html>
"""

_NOTICE = """{% extends "layout" %}{% block main %}
<h1>{{ title }}</h1>
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% endblock %}
"""

_MANAGE = """{% extends "layout" %}{% block main %}
{% if done %}<div class="notice" role="status"><h1>{{ done.title }}</h1>
<p>{{ done.body }}</p></div>{% else %}<h1>{{ title }}</h1>{% endif %}
{% if name %}<p>{{ t.greeting.format(name=name) }}</p>{% endif %}
{% if address %}<p class="muted">{{ t.for_address.format(address=address) }}</p>{% endif %}
{% if unsubscribe %}
<form method="post">
<p>{{ unsubscribe.lead }}</p>
<input type="hidden" name="action" value="unsubscribe">
<button type="submit">{{ unsubscribe.button }}</button>
</form>
<h2 id="preferences">{{ t.manage_heading }}</h2>
{% endif %}
<form method="post">
<p>{{ t.preferences_lead }}</p>
<input type="hidden" name="action" value="save">
<table>
<thead><tr><th>{{ t.column_channel }}</th><th>{{ t.column_marketing }}</th>
<th>{{ t.column_transactional }}</th></tr></thead>
<tbody>
{% for row in rows %}<tr>
<td><label for="marketing-{{ row.channel }}">{{ row.label }}</label></td>
<td><input type="checkbox" id="marketing-{{ row.channel }}" name="marketing"
 value="{{ row.channel }}"{% if row.checked %} checked{% endif %}></td>
<td class="muted">{{ t.always }}</td>
</tr>
{% endfor %}</tbody>
</table>
<p class="muted">{{ t.transactional_note }}</p>
<button type="submit">{{ t.save_button }}</button>
</form>
{% endblock %}
"""

_env = Environment(
    loader=DictLoader({"layout": _LAYOUT, "notice": _NOTICE, "manage": _MANAGE}),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Row:
    channel: str
    label: str
    checked: bool


def channel_label(language: str, channel: str) -> str:
    return strings(language).get(f"channel_{channel}", channel)


def notice(language: str, status: int, title: str, *paragraphs: str) -> HTMLResponse:
    """A page with a title and a few paragraphs, all from the strings of ``language``."""
    t = strings(language)
    body = _env.get_template("notice").render(
        lang=language, title=t[title], paragraphs=[t[p] for p in paragraphs]
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def manage(
    language: str,
    *,
    name: str | None,
    address: str | None,
    state: Mapping[str, bool],
    unsubscribe_channel: str | None = None,
    offer_unsubscribe: bool = False,
    done: str | None = None,
    done_channel: str | None = None,
) -> HTMLResponse:
    """The unsubscribe confirmation (when ``offer_unsubscribe``) and the preference centre.

    ``done``: ``"unsubscribed"`` or ``"saved"`` shows that confirmation on top.
    ``unsubscribe_channel`` ``None`` means every channel.
    """
    t = strings(language)
    rows: Sequence[Row] = [
        Row(channel, channel_label(language, channel), checked)
        for channel, checked in state.items()
    ]
    context: dict[str, Any] = {
        "lang": language,
        "t": t,
        "name": name,
        "address": address,
        "rows": rows,
        "title": t["title_unsubscribe" if offer_unsubscribe else "title_preferences"],
        "unsubscribe": None,
        "done": None,
    }
    if offer_unsubscribe:
        if unsubscribe_channel is None:
            lead, button = t["unsubscribe_lead_all"], t["unsubscribe_button_all"]
        else:
            label = channel_label(language, unsubscribe_channel)
            lead = t["unsubscribe_lead"].format(channel=label)
            button = t["unsubscribe_button"].format(channel=label)
        context["unsubscribe"] = {"lead": lead, "button": button}
    if done == "unsubscribed":
        body = (
            t["unsubscribed_body_all"]
            if done_channel is None
            else t["unsubscribed_body"].format(channel=channel_label(language, done_channel))
        )
        context["done"] = {"title": t["unsubscribed_title"], "body": body}
    elif done == "saved":
        context["done"] = {"title": t["saved_title"], "body": t["saved_body"]}
    return HTMLResponse(_env.get_template("manage").render(context), headers=HEADERS)
