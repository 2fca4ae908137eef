"""The pages people reach from a message: unsubscribe, preference centre, tracked clicks.

``GET /u/{token}`` opens the page of an unsubscribe or a preferences token
(``render/links.py``): for an unsubscribe token, one button that unsubscribes
from that channel's marketing (every channel's when the token names none),
then the preference centre; for a preferences token, the preference centre
alone. ``POST /u/{token}`` takes the page's forms (``action=unsubscribe`` or
``action=save`` with one ``marketing=<channel>`` per ticked box) and answers
with a localised confirmation. ``/unsubscribe/{token}`` and
``/preferences/{token}`` serve the same, for links sent before the move to
``/u/``.

RFC 8058 one-click: the adapters put the unsubscribe link in
``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``;
a mail provider then POSTs ``List-Unsubscribe=One-Click`` to the link, and
that unsubscribes at once and answers 200 with a short text body — no page, no
second step. https://www.rfc-editor.org/rfc/rfc8058

No CSRF token: every POST is authorised by the signed token in its URL, which
only the recipient of the message has (the standard design for unsubscribe
links, and the only one RFC 8058 allows). A forged or truncated token is
refused with a 400 page, an expired one with 410; neither changes anything.

``GET /r/{token}`` verifies a click token, records a ``clicked`` event for its
outbox row and redirects (302) to the URL inside the token and nowhere else:
query parameters are ignored, so the endpoint cannot be used as an open
redirect. A preview token (no outbox id) redirects without recording.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.responses import Response as HttpResponse
from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from narrowcast.api import html
from narrowcast.api.context import ApiContext, context
from narrowcast.api.engagement import Response, record
from narrowcast.api.locale import choose
from narrowcast.api.preferences import Change, Person, current, find_person, set_marketing
from narrowcast.render.errors import LinkError, TokenExpired, TokenInvalid
from narrowcast.render.links import Preferences, Unsubscribe
from narrowcast.store.schema import CHANNELS, outbox

log = logging.getLogger("narrowcast.api.pages")

router = APIRouter(tags=["pages"])

SOURCE_PAGE = "preference centre"
SOURCE_ONE_CLICK = "one-click unsubscribe"
_LEGACY = ("/unsubscribe/{token:path}", "/preferences/{token:path}")


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The POSTed form, url-encoded or multipart (RFC 8058 allows both), or no content type."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
        return fields
    body = await request.body()
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


@dataclass(frozen=True, slots=True)
class _Page:
    """A verified token and who it is for."""

    token: Unsubscribe | Preferences
    person: Person
    language: str

    @property
    def unsubscribe_channels(self) -> tuple[str, ...]:
        """The channels an unsubscribe stops: the token's, or all of them."""
        channel = self.channel
        return (channel,) if channel is not None else self.person.channels()

    @property
    def channel(self) -> str | None:
        """The token's channel, when it is one the consent table knows; else None (all)."""
        if isinstance(self.token, Unsubscribe) and self.token.channel in CHANNELS:
            return self.token.channel
        if isinstance(self.token, Preferences):
            return "email"  # only a mail client would one-click a preferences link
        return None


@router.get("/u/{token:path}", response_class=HTMLResponse)
def show(token: str, request: Request) -> HttpResponse:
    """The unsubscribe confirmation and preference centre of a signed link."""
    ctx = context(request)
    with ctx.store.connect() as conn:
        page = _open(ctx, conn, token, request)
        if not isinstance(page, _Page):
            return page
        return _manage(page, conn)


@router.post("/u/{token:path}", response_class=HTMLResponse)
def submit(
    token: str, request: Request, fields: Annotated[dict[str, list[str]], Depends(form_fields)]
) -> HttpResponse:
    """Unsubscribe (a button, or RFC 8058 one-click) or save the preference centre."""
    ctx = context(request)
    one_click = "One-Click" in fields.get("List-Unsubscribe", [])
    action = (fields.get("action") or [""])[0]
    with ctx.store.begin() as conn:
        page = _open(ctx, conn, token, request, one_click=one_click)
        if not isinstance(page, _Page):
            return page
        now = ctx.clock()
        if one_click or action == "unsubscribe":
            channels = page.unsubscribe_channels
            source = SOURCE_ONE_CLICK if one_click else SOURCE_PAGE
            change = set_marketing(
                conn,
                page.person.id,
                dict.fromkeys(channels, False),
                source=source,
                now=now,
                email=page.person.email,
            )
            _record_unsubscribes(conn, page.person.id, change, source, ctx)
            if one_click:
                return PlainTextResponse("unsubscribed\n", headers={"Cache-Control": "no-store"})
            done_channel = channels[0] if len(channels) == 1 else None
            return _manage(page, conn, done="unsubscribed", done_channel=done_channel)
        if action == "save":
            ticked = set(fields.get("marketing", []))
            wanted = {channel: channel in ticked for channel in page.person.channels()}
            change = set_marketing(
                conn, page.person.id, wanted, source=SOURCE_PAGE, now=now, email=page.person.email
            )
            _record_unsubscribes(conn, page.person.id, change, SOURCE_PAGE, ctx)
            return _manage(page, conn, done="saved")
    log.info("unsubscribe page: POST without a known action (%r)", action[:40])
    return html.notice(page.language, 400, "broken_title", "broken_body", "broken_todo")


for _path in _LEGACY:
    router.add_api_route(_path, show, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(_path, submit, methods=["POST"], response_class=HTMLResponse)


@router.get("/r/{token:path}")
def click(token: str, request: Request) -> HttpResponse:
    """Record a click on a message and redirect to the URL its token was signed with."""
    ctx = context(request)
    try:
        verified = ctx.signer.verify_click(token, now=ctx.clock())
    except LinkError as exc:
        return _link_error(exc, request)
    if urlsplit(verified.url).scheme.lower() not in ("http", "https"):
        # The renderer only signs http(s) URLs; anything else was not made by it.
        log.warning("click token with a non-http URL refused")
        return _link_error(TokenInvalid("click token URL is not http(s)"), request)
    if verified.outbox_id is not None:
        try:
            _record_click(ctx, verified.outbox_id, verified.url)
        except SQLAlchemyError as exc:
            # The person still gets where they were going; the click is lost, and logged.
            log.error("click on outbox %s not recorded: %s", verified.outbox_id, exc)
    return RedirectResponse(verified.url, status_code=302, headers={"Cache-Control": "no-store"})


# --- helpers of the endpoints above --------------------------------------------------------


def _open(
    ctx: ApiContext, conn: Connection, token: str, request: Request, *, one_click: bool = False
) -> _Page | HttpResponse:
    """The verified page of ``token``, or the error response to send instead."""
    try:
        verified = _verify(ctx, token)
    except LinkError as exc:
        return _link_error(exc, request)
    person = find_person(conn, verified.customer_id)
    if person is None:
        if one_click:  # nothing left to unsubscribe: done, as far as the mail client cares
            return PlainTextResponse("unsubscribed\n", headers={"Cache-Control": "no-store"})
        language = choose(None, request.headers.get("accept-language"))
        return html.notice(language, 404, "gone_title", "gone_body")
    language = choose(person.locale, request.headers.get("accept-language"))
    return _Page(verified, person, language)


def _verify(ctx: ApiContext, token: str) -> Unsubscribe | Preferences:
    """An unsubscribe token, or else a preferences token; the first error if neither."""
    now = ctx.clock()
    try:
        return ctx.signer.verify_unsubscribe(token, now=now)
    except TokenInvalid as first:
        try:
            return ctx.signer.verify_preferences(token, now=now)
        except TokenExpired:
            raise
        except TokenInvalid:
            raise first from None


def _link_error(exc: LinkError, request: Request) -> HTMLResponse:
    language = choose(None, request.headers.get("accept-language"))
    log.info("refused link on %s: %s", request.url.path.split("/")[1], exc)
    if isinstance(exc, TokenExpired):
        return html.notice(language, 410, "expired_title", "expired_body", "expired_todo")
    return html.notice(language, 400, "broken_title", "broken_body", "broken_todo")


def _manage(
    page: _Page,
    conn: Connection,
    *,
    done: str | None = None,
    done_channel: str | None = None,
) -> HTMLResponse:
    return html.manage(
        page.language,
        name=page.person.first_name,
        address=page.person.email,
        state=current(conn, page.person),
        unsubscribe_channel=page.channel,
        offer_unsubscribe=isinstance(page.token, Unsubscribe) and done is None,
        done=done,
        done_channel=done_channel,
    )


def _record_unsubscribes(
    conn: Connection, customer_id: str, change: Change, source: str, ctx: ApiContext
) -> None:
    now = ctx.clock()
    record(
        conn,
        [
            Response(customer_id, "unsubscribed", now, channel=channel, extra={"source": source})
            for channel in change.withdrawn
        ],
    )


def _record_click(ctx: ApiContext, outbox_id: int | str, url: str) -> None:
    try:
        wanted = int(outbox_id)
    except (TypeError, ValueError):
        log.info("click token with outbox id %r: not recorded", outbox_id)
        return
    o = outbox.c
    with ctx.store.begin() as conn:
        row = conn.execute(
            select(o.customer_id, o.campaign, o.variant, o.channel).where(o.id == wanted)
        ).first()
        if row is None:
            log.info("click on outbox %s, which is not in the store: not recorded", wanted)
            return
        record(
            conn,
            [
                Response(
                    row.customer_id,
                    "clicked",
                    ctx.clock(),
                    outbox_id=wanted,
                    campaign=row.campaign,
                    variant=row.variant,
                    channel=row.channel,
                    extra={"url": url},
                )
            ],
        )
