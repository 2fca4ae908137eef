"""The dashboard's pages as Jinja templates (server-rendered; no script runs in them)."""

from __future__ import annotations

from jinja2 import DictLoader, Environment, StrictUndefined

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{ title }}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1e1e1e;
background:#f6f6f4;margin:0}
header.bar{background:#1d2b44;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.4rem;
align-items:center;flex-wrap:wrap}
header.bar a{color:#dce6f7;text-decoration:none}header.bar a[aria-current]{color:#fff;
font-weight:600;border-bottom:2px solid #fff}
header.bar strong{font-size:1.1rem;margin-right:1rem}
header.bar form{margin-left:auto}header.bar button{font:inherit;background:none;
color:#dce6f7;border:1px solid #5b6c8c;border-radius:4px;padding:.15rem .7rem;cursor:pointer}
main{max-width:72rem;margin:0 auto;padding:1.2rem 1.5rem}
h1{font-size:1.5rem;margin:.4rem 0 1rem}h2{font-size:1.2rem;margin-top:1.8rem}
table.grid{border-collapse:collapse;background:#fff;font-size:.9rem;width:100%}
table.grid th,table.grid td{padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;
text-align:left;vertical-align:top}table.grid td.n,table.grid th.n{text-align:right}
.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}.muted{color:#666}
.notice{background:#fff;border-left:4px solid #c62828;padding:.8rem 1rem}
.paused{background:#fff4e5;border-left:4px solid #e07b00;padding:.6rem 1rem;margin:.4rem 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:1rem;margin:1rem 0}
.card h3{margin:0 0 .6rem;font-size:1.05rem}
dl.parts{display:grid;grid-template-columns:8rem 1fr;gap:.3rem .8rem;margin:0}
dl.parts dt{color:#555}dl.parts dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
iframe.email{width:100%;height:34rem;border:1px solid #ccc;border-radius:4px;background:#fff}
form.login{background:#fff;padding:1.2rem;border-radius:8px;max-width:26rem}
form.login input{font:inherit;width:100%;padding:.4rem;margin:.3rem 0 .8rem;box-sizing:border-box}
form.login button{font:inherit;padding:.5rem 1.2rem;border:0;border-radius:6px;
background:#1f5fbf;color:#fff;cursor:pointer}
{{ report_style }}
</style>
</head>
<body>
<header class="bar">
<strong>narrowcast</strong>
{% if active %}
<a href="/dashboard"{% if active == "overview" %} aria-current="page"{% endif %}>Overview</a>
<a href="/dashboard/charts"{% if active == "charts" %} aria-current="page"{% endif %}>Charts</a>
<form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form>
{% endif %}
</header>
<main>{% block main %}{% endblock %}
{% if now %}<p class="muted">As of {{ now.strftime("%Y-%m-%d %H:%M:%S") }} UTC.</p>{% endif %}
</main>
</body>
</html>
"""

_OVERVIEW = """{% extends "layout" %}{% block main %}
<h1>Campaigns</h1>
{% for problem in problems %}<p class="notice">{{ problem }}</p>{% endfor %}
<table class="grid">
<thead><tr><th>campaign</th><th>enabled</th><th>schedule</th><th>channels</th>
<th>last run</th><th>state</th><th class="n">planned</th><th>next run (UTC)</th>
<th>preview</th></tr></thead>
<tbody>
{% for c in campaigns %}<tr>
<td>{{ c.name }}</td>
<td class="{{ 'ok' if c.enabled else 'muted' }}">{{ "yes" if c.enabled else "no" }}</td>
<td>{{ c.schedule }}</td><td>{{ c.channels }}</td>
{% if c.run %}
<td>{{ c.run.occurrence.strftime("%Y-%m-%d %H:%M") }} ({{ c.run.kind }})</td>
<td><span class="{{ state_class[c.run.state] }}">{{ c.run.state }}</span>
{%- if c.run.error %}: {{ c.run.error }}{% endif %}</td>
<td class="n">{{ c.run.planned }}</td>
{% else %}<td class="muted">never</td><td>-</td><td class="n">-</td>{% endif %}
<td>{% if c.next_run %}{{ c.next_run[:16].replace("T", " ") }}
{%- elif c.triggered and c.enabled %}on trigger{% else %}-{% endif %}</td>
<td><a href="/dashboard/campaigns/{{ c.name }}">messages</a></td>
</tr>
{% endfor %}</tbody></table>

<h2>Paused channels</h2>
{% for channel, p in paused.items() %}
<div class="paused" role="alert"><strong>{{ channel }}</strong> paused since
{{ p.since[:19].replace("T", " ") }}: {{ p.reason }}<br>
<span class="muted">Its messages wait. Fix the credentials, then run
<code>narrowcast channels resume {{ channel }}</code>.</span></div>
{% else %}<p class="ok">No channel is paused.</p>{% endfor %}

<h2>Queue</h2>
{% if queue %}
<table class="grid"><thead><tr><th>channel</th>
{% for s in states %}<th class="n">{{ s }}</th>{% endfor %}<th class="n">due now</th></tr>
</thead><tbody>
{% for q in queue %}<tr><td>{{ q.channel }}</td>
{% for n in q.counts %}<td class="n">{{ "{:,}".format(n) }}</td>{% endfor %}
<td class="n">{{ "{:,}".format(q.due) }}</td></tr>
{% endfor %}<tr><th>all</th>
{% for n in totals %}<th class="n">{{ "{:,}".format(n) }}</th>{% endfor %}<th></th></tr>
</tbody></table>
{% else %}<p class="muted">The outbox is empty: nothing has been planned yet.</p>{% endif %}

<h2>Latest errors</h2>
{% if errors %}<table class="grid"><thead><tr><th>at (UTC)</th><th>campaign</th>
<th>message</th><th>channel</th><th>status</th><th>error</th></tr></thead><tbody>
{% for e in errors %}<tr><td>{{ e.at[:19].replace("T", " ") }}</td><td>{{ e.campaign }}</td>
<td>#{{ e.outbox_id }}</td><td>{{ e.channel }}</td><td>{{ e.status }}</td>
<td>{{ e.error }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p class="ok">No delivery errors.</p>{% endif %}
{% endblock %}
"""

_CHARTS = """{% extends "layout" %}{% block main %}
<h1>Charts</h1>
<p class="muted">The charts of <code>narrowcast report --html</code>, over all recorded
history.</p>
{{ body }}
{% endblock %}
"""

_CAMPAIGN = """{% extends "layout" %}{% block main %}
<h1>{{ campaign.name }}</h1>
<p>{{ campaign.description }}</p>
<p class="muted">{{ schedule }} · {{ "enabled" if campaign.enabled else "disabled" }}
· {{ campaign.purpose }}{% if campaign.segment %} · segment {{ campaign.segment }}{% endif %}
{% if campaign.goal %} · goal {{ campaign.goal }} within {{ campaign.attribution_window }}
{% endif %}</p>
{% if customer %}
<p>Rendered for sample customer <strong>{{ customer.id }}</strong>
{%- if customer.first_name %} ({{ customer.first_name }}
{%- if customer.locale %}, {{ customer.locale }}{% endif %}){% endif %}.
Links are previews: a click on them is not recorded.</p>
{% for p in previews %}
<section class="card" aria-label="{{ p.label }}">
<h3>{{ p.label }}</h3>
{% if p.error %}<p class="notice">Cannot render: {{ p.error }}</p>{% else %}
<dl class="parts">
{% for name, text in p.fields %}<dt>{{ name }}</dt><dd>{{ text }}</dd>{% endfor %}
</dl>
{% if p.channel == "email" and p.parts.html %}
<iframe class="email" title="{{ p.label }}: the email as sent" sandbox="allow-same-origin"
 srcdoc="{{ p.parts.html }}"></iframe>
{% endif %}{% endif %}
</section>
{% else %}<p class="notice">No channel of this campaign has its templates.</p>{% endfor %}
{% else %}<p class="notice">No customer in the store to render the messages for.</p>{% endif %}
{% endblock %}
"""

_LOGIN = """{% extends "layout" %}{% block main %}
<h1>narrowcast dashboard</h1>
{% if reason == "missing" %}<p>{{ message }}</p>
{% else %}<p class="notice" role="alert">{{ message }}</p>{% endif %}
<form class="login" method="post" action="/dashboard/login">
<label for="key">Operator key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{ target }}">
<button type="submit">Sign in</button>
</form>
{% endblock %}
"""

_NOTICE = """{% extends "layout" %}{% block main %}
<h1>{{ heading }}</h1>
<p class="notice" role="alert">{{ message }}</p>
{% endblock %}
"""

TEMPLATES = Environment(
    loader=DictLoader(
        {
            "layout": _LAYOUT,
            "overview": _OVERVIEW,
            "charts": _CHARTS,
            "campaign": _CAMPAIGN,
            "login": _LOGIN,
            "notice": _NOTICE,
        }
    ),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
)


__all__ = ["TEMPLATES"]
