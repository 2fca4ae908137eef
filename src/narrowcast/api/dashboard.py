"""``/dashboard``: a read-only view of the worker for operators, server-rendered, no JavaScript.

Pages:

* ``GET /dashboard`` — every campaign (enabled, schedule, its latest run and
  that run's state, the next run), the queue by channel and state, paused
  channels and the latest delivery errors: what ``narrowcast status`` prints
  (``worker/status.py``), plus the latest run of every state;
* ``GET /dashboard/charts`` — the charts of ``narrowcast report --html``
  (``narrowcast.reporting``);
* ``GET /dashboard/campaigns/{name}`` — each channel and variant of a
  campaign rendered for a sample customer of its audience, the way
  ``dry-run`` renders its samples; an email's HTML in an ``<iframe srcdoc>``
  sandboxed to everything but its own origin: no scripts (the sandbox, and
  the page's CSP the frame inherits), no forms, no navigating the page. Without
  ``allow-same-origin`` Chromium isolates the frame in another process and
  headless screenshots show it blank.

Access is the operator key — the server key of ``/v1/events`` (``[api]
api_key_env``); with none configured every page answers 503 naming that
setting. A browser cannot send a Bearer header when it navigates, so
``POST /dashboard/login`` takes the key from a form and answers with a
session cookie: ``v1.<expiry>.<HMAC-SHA256>``, keyed by a key derived from
the operator key (changing the key signs everyone out), HttpOnly,
SameSite=Strict, Path=/dashboard, Secure over https, valid for
``SESSION_HOURS``. A request with the key as ``Authorization: Bearer`` is let
in too (scripts, curl). A wrong key, an expired or a tampered cookie gets the
sign-in form again with a 401 and a sentence saying which it was.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.responses import Response as HttpResponse
from markupsafe import Markup
from sqlalchemy import Connection, func, select

from narrowcast.api.context import ApiContext, context
from narrowcast.api.dashboard_templates import TEMPLATES
from narrowcast.api.pages import form_fields
from narrowcast.campaigns.messages import channels_with_templates, render_message, segment_keys
from narrowcast.campaigns.model import Campaign
from narrowcast.planning.context import ContextReader
from narrowcast.planning.planner import Planner
from narrowcast.render.errors import RenderError
from narrowcast.render.links import Links
from narrowcast.render.renderer import Renderer
from narrowcast.reporting import STYLE, build_sections, sections_html
from narrowcast.segments.definitions import Definitions
from narrowcast.segments.errors import RuleError
from narrowcast.store.schema import campaign_runs, customers
from narrowcast.worker.library import CampaignLibrary, TemplateFolder
from narrowcast.worker.status import STATE_ORDER, status

log = logging.getLogger("narrowcast.api.dashboard")

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

COOKIE = "narrowcast_dashboard"
SESSION_HOURS = 12
OFF = "the dashboard is off: set [api] api_key_env in config.toml (the operator key) to enable it"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Previews may show a message's images; everything else stays on this page.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https: http:; "
        "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_SIGN_IN = {
    "missing": "Sign in with the operator key (the server key of /v1/events).",
    "expired": "Your dashboard session has expired: sign in again.",
    "invalid": "Your dashboard session cookie is not valid (altered, or signed with an old "
    "key): sign in again.",
    "wrong": "Wrong operator key: the dashboard takes the server key of /v1/events — the "
    "value of the variable [api] api_key_env names.",
}


# --- the session cookie -----------------------------------------------------------------------


def _session_key(api_key: str) -> bytes:
    return hmac.new(api_key.encode(), b"narrowcast dashboard session v1", hashlib.sha256).digest()


def session_cookie(api_key: str, expires: datetime) -> str:
    """The cookie value for a session that ends at ``expires``."""
    payload = f"v1.{int(expires.timestamp())}"
    mac = hmac.new(_session_key(api_key), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def check_session(api_key: str, value: str | None, now: datetime) -> str:
    """``ok``, ``missing``, ``invalid`` (not ours, or altered) or ``expired``."""
    if not value:
        return "missing"
    version, _, rest = value.partition(".")
    expiry, _, mac = rest.partition(".")
    if version != "v1" or not expiry.isdigit():
        return "invalid"
    expected = session_cookie(api_key, datetime.fromtimestamp(int(expiry), now.tzinfo))
    if not hmac.compare_digest(expected.encode(), value.encode()):
        return "invalid"
    return "ok" if int(expiry) > now.timestamp() else "expired"


def _operator(request: Request) -> tuple[ApiContext, str]:
    """The context and the session's state: ``ok``, ``off`` or why not."""
    ctx = context(request)
    key = ctx.secrets.api_key
    if key is None:
        return ctx, "off"
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode()):
        return ctx, "ok"
    return ctx, check_session(key, request.cookies.get(COOKIE), ctx.clock())


Operator = Annotated[tuple[ApiContext, str], Depends(_operator)]


# --- what the pages read: the campaign files and templates --------------------------------------


class _Files:
    """The campaign library and templates, reloaded when files change; one per app."""

    def __init__(self, ctx: ApiContext) -> None:
        settings = ctx.settings
        self.lock = threading.Lock()
        self.library = CampaignLibrary(settings.campaigns.dir, tuple(settings.channels.routes()))
        self.renderer = Renderer(
            settings.campaigns.templates, Links(ctx.signer, settings.links.base_url)
        )
        self.templates = TemplateFolder(self.renderer.templates)

    def current(self) -> tuple[dict[str, Campaign], Definitions, list[str]]:
        with self.lock:
            self.library.reload()
            self.templates.reload()
            return dict(self.library.campaigns), self.library.definitions, self.library.problems


_files_lock = threading.Lock()


def _files(request: Request, ctx: ApiContext) -> _Files:
    with _files_lock:
        found: _Files | None = getattr(request.app.state, "dashboard_files", None)
        if found is None:
            found = request.app.state.dashboard_files = _Files(ctx)
        return found


# --- pages ---------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, operator: Operator) -> HttpResponse:
    """Campaigns, queue depth, paused channels and the latest errors."""
    ctx, state = operator
    if state != "ok":
        return _refuse(request, state)
    files = _files(request, ctx)
    campaigns, _, problems = files.current()
    now = ctx.clock()
    with ctx.store.connect() as conn:
        found = status(conn, campaigns, now)
        latest = _latest_runs(conn)
    rows = []
    for entry in found.campaigns:
        campaign = campaigns[entry["name"]]
        run = latest.get(entry["name"])
        rows.append(
            {
                **entry,
                "schedule": _schedule(campaign),
                "channels": campaign.channel
                if isinstance(campaign.channel, str)
                else ", ".join(campaign.channel),
                "run": run,
            }
        )
    states = sorted({s for q in found.queue.values() for s in q}, key=STATE_ORDER.index)
    queue = [
        {
            "channel": channel or "(holdout)",
            "counts": [q.get(s, 0) for s in states],
            "due": found.due.get(channel, 0),
        }
        for channel, q in sorted(found.queue.items())
    ]
    return _page(
        "overview",
        title="narrowcast dashboard",
        active="overview",
        now=now,
        campaigns=rows,
        states=states,
        queue=queue,
        totals=[sum(q.get(s, 0) for q in found.queue.values()) for s in states],
        paused=found.paused,
        errors=found.errors,
        problems=problems,
    )


@router.get("/charts", response_class=HTMLResponse)
def charts(request: Request, operator: Operator) -> HttpResponse:
    """The charts of ``narrowcast report --html``, over all recorded history."""
    ctx, state = operator
    if state != "ok":
        return _refuse(request, state)
    campaigns, _, _ = _files(request, ctx).current()
    with ctx.store.connect() as conn:
        sections = build_sections(conn, campaigns, planning=ctx.settings.planning, now=ctx.clock())
    return _page(
        "charts",
        title="Charts · narrowcast dashboard",
        active="charts",
        now=ctx.clock(),
        sections=sections,
        body=sections_html(sections),
    )


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_preview(name: str, request: Request, operator: Operator) -> HttpResponse:
    """Every channel and variant of campaign ``name``, rendered for a sample customer."""
    ctx, state = operator
    if state != "ok":
        return _refuse(request, state)
    files = _files(request, ctx)
    campaigns, definitions, _ = files.current()
    campaign = campaigns.get(name)
    if campaign is None:
        import difflib

        close = difflib.get_close_matches(name, list(campaigns), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        return _page(
            "notice",
            status=404,
            title="No such campaign · narrowcast dashboard",
            active="overview",
            now=ctx.clock(),
            heading="No such campaign",
            message=f"There is no campaign named '{name}' in the campaigns folder{hint}",
        )
    now = ctx.clock()
    with ctx.store.connect() as conn, files.lock:
        previews, customer = _previews(conn, files.renderer, campaign, definitions, ctx, now)
    return _page(
        "campaign",
        title=f"{name} · narrowcast dashboard",
        active="overview",
        now=now,
        campaign=campaign,
        schedule=_schedule(campaign),
        customer=customer,
        previews=previews,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, operator: Operator) -> HttpResponse:
    ctx, state = operator
    if state == "ok":
        return RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    if state == "off":
        return _refuse(request, state)
    return _sign_in(request, "missing", status=200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, fields: Annotated[dict[str, list[str]], Depends(form_fields)]
) -> HttpResponse:
    """Check the operator key from the form; a session cookie and back to the page asked for."""
    ctx = context(request)
    key = ctx.secrets.api_key
    if key is None:
        return _refuse(request, "off")
    given = (fields.get("key") or [""])[0].strip()
    target = _safe_next((fields.get("next") or [""])[0])
    if not hmac.compare_digest(given.encode(), key.encode()):
        log.info("dashboard sign-in refused: wrong operator key")
        return _sign_in(request, "wrong", target=target)
    expires = ctx.clock() + timedelta(hours=SESSION_HOURS)
    response = RedirectResponse(target, status_code=303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        session_cookie(key, expires),
        max_age=SESSION_HOURS * 3600,
        path="/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout() -> HttpResponse:
    response = RedirectResponse("/dashboard/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


# --- helpers of the pages ----------------------------------------------------------------------


_STATE_CLASS = {"failed": "bad", "planned": "ok", "planning": "muted"}


def _schedule(campaign: Campaign) -> str:
    kind = campaign.schedule_kind
    text = f"{kind} {getattr(campaign, kind)}"
    return text + (f" +{campaign.delay}" if campaign.delay else "")


def _latest_runs(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each campaign's most recent run, whatever its state (planning, planned, failed)."""
    r = campaign_runs
    newest = select(r.c.campaign, func.max(r.c.id).label("id")).group_by(r.c.campaign).subquery()
    rows = conn.execute(
        select(r.c.campaign, r.c.state, r.c.kind, r.c.occurrence, r.c.finished_at, r.c.planned)
        .add_columns(r.c.error)
        .join(newest, newest.c.id == r.c.id)
    ).mappings()
    return {row["campaign"]: dict(row) for row in rows}


def _sample_customer(conn: Connection, campaign: Campaign, planner: Planner) -> str | None:
    """The first customer of the campaign's audience (by id), or of the store."""
    try:
        audience = planner.audience(campaign).subquery("audience")
        first = conn.execute(
            select(audience.c.id).order_by(audience.c.id).limit(1)
        ).scalar_one_or_none()
    except RuleError:
        first = None
    if first is None:
        first = conn.execute(
            select(customers.c.id).order_by(customers.c.id).limit(1)
        ).scalar_one_or_none()
    return None if first is None else str(first)


@dataclass(frozen=True)
class _Preview:
    channel: str
    variant: str | None
    parts: dict[str, Any] | None
    error: str | None = None

    @property
    def label(self) -> str:
        return self.channel + (f" · variant {self.variant}" if self.variant else "")

    @property
    def fields(self) -> list[tuple[str, str]]:
        """The parts other than an email's html, as text."""
        shown = []
        for name, value in (self.parts or {}).items():
            if name == "html" and self.channel == "email":
                continue
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
            if text:
                shown.append((name, text))
        return shown


def _previews(
    conn: Connection,
    renderer: Renderer,
    campaign: Campaign,
    definitions: Definitions,
    ctx: ApiContext,
    now: datetime,
) -> tuple[list[_Preview], dict[str, Any] | None]:
    settings = ctx.settings.planning
    planner = Planner(conn, definitions, settings, now)
    customer_id = _sample_customer(conn, campaign, planner)
    if customer_id is None:
        return [], None
    candidates = settings.channel_order if campaign.channel == "auto" else campaign.channel
    channels = channels_with_templates(renderer, campaign, tuple(candidates))
    variants: list[str | None] = [v.name for v in campaign.variants] or [None]
    reader = ContextReader(conn, definitions, now)
    customer = reader.customers([customer_id])[customer_id]
    kinds = {
        (channel, variant, customer.get("locale")) for channel in channels for variant in variants
    }
    keys = segment_keys(renderer, campaign, kinds)
    segment = reader.segments([customer_id], campaign.segment, keys)[customer_id]
    previews = []
    for channel in channels:
        for variant in variants:
            try:
                parts = render_message(
                    renderer,
                    campaign,
                    channel,
                    customer,
                    variant=variant,
                    segment=segment,
                    outbox_id=None,
                )
            except RenderError as exc:
                previews.append(_Preview(channel, variant, None, str(exc.message)))
                continue
            previews.append(_Preview(channel, variant, parts))
    return previews, customer


def _safe_next(target: str) -> str:
    """Only a dashboard path of this server: never an open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard"):
        return "/dashboard"
    if "\\" in target or target.startswith("//"):
        return "/dashboard"
    return parts.path


def _refuse(request: Request, state: str) -> HTMLResponse:
    if state == "off":
        return _page(
            "notice",
            status=503,
            title="Dashboard off · narrowcast",
            active=None,
            now=None,
            heading="The dashboard is off",
            message=OFF,
        )
    return _sign_in(request, state, target=_safe_next(request.url.path))


def _sign_in(
    request: Request, reason: str, *, target: str = "/dashboard", status: int = 401
) -> HTMLResponse:
    return _page(
        "login",
        status=status,
        title="Sign in · narrowcast dashboard",
        active=None,
        now=None,
        reason=reason,
        message=_SIGN_IN[reason],
        target=target,
    )


def _page(template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(template).render(
        report_style=Markup(STYLE), state_class=_STATE_CLASS, **values
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)
