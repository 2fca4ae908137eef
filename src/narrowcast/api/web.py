"""Web messages: what the browser snippet shows a visitor, and what the visitor did.

The ``web`` channel (``narrowcast.channels.web``) writes ``web_messages``
rows, each for one customer or — with no customer — for any visitor its
targeting matches. The snippet (``static/narrowcast.js``, served at
``/v1/narrowcast.js``) describes the visit and asks which messages fit::

    GET /v1/web-messages?visitor=<id>&returning=true&referrer=search&path=/shoes/boots

and reports back ``seen``, ``click``, ``dismiss`` and survey ``answer``. Who
saw what is kept per visitor in ``web_views`` (``c:<customer>`` for a visitor
the shop identified with a customer token, ``v:<visitor id>`` otherwise), so
a message stops showing after a dismiss, a click, an answer, or
``[api] web_max_views`` views.

Choosing the messages is one SQL statement (see ``targeted``), run on every
page view of the shop: no Python loop over the table. At most one message per
placement comes back; the priority is *a message for this very customer
before one for anybody, then the newest, then the highest id* — stable, so a
visitor is not shown a different banner on every page.

On PostgreSQL the statement is compiled once to psycopg's SQL text and run on
the driver's cursor, outside a transaction, on a connection that is not pinged
first (``Store.read``): SQLAlchemy's per-execution work, an ``IN`` list
re-rendered for every request and the pool's ping, BEGIN and ROLLBACK round
trips cost several times the query itself (``bench/README.md``). One
unchanging text also lets psycopg prepare it on each connection after a few
uses.

Path globs (``targeting.path``) know ``*`` (any run of characters, ``/``
included) and ``?`` (one character); everything else is literal, on both
databases (SQLite ``GLOB``, PostgreSQL ``LIKE``), as ``fnmatch.fnmatchcase``
would match with ``[`` escaped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    Select,
    String,
    Text,
    any_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement

from narrowcast.api.context import ApiContext, context, customer_from
from narrowcast.api.engagement import Response as Engagement
from narrowcast.api.engagement import record
from narrowcast.store.bulk import dialect_insert
from narrowcast.store.schema import customers, web_messages, web_views

router = APIRouter(tags=["web messages"])

CHANNEL = "web"

VISITOR_PATTERN = r"^[A-Za-z0-9_-]{8,100}$"
"""An anonymous visitor id: what the snippet keeps in its ``nc_vid`` cookie (a UUID)."""

Referrer = Literal["search", "social", "email", "direct"]
VisitorId = Annotated[
    str,
    Field(
        pattern=VISITOR_PATTERN,
        description="the snippet's anonymous visitor id: 8–100 letters, digits, '-' or '_'",
    ),
]
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""A message id: a positive 64-bit integer (larger ones are a 422, not a database error)."""


class WebMessage(BaseModel):
    id: int
    campaign: str
    placement: str
    survey: str | None
    title: str
    body: str
    cta_label: str | None = None
    cta_url: str | None = None
    image: str | None = None


class WebMessages(BaseModel):
    messages: list[WebMessage]


class Visit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor: VisitorId


class Answer(Visit):
    score: Annotated[StrictInt, Field(ge=0, le=10, description="NPS: 0 (not at all) to 10")]


@router.get("/v1/web-messages", response_model=WebMessages)
async def list_messages(
    request: Request,
    visitor: Annotated[str, Query(pattern=VISITOR_PATTERN, description="anonymous visitor id")],
    returning: Annotated[
        bool, Query(description="true when the visitor has been here in an earlier session")
    ] = False,
    referrer: Annotated[
        Referrer, Query(description="where the visit came from: search, social, email, direct")
    ] = "direct",
    path: Annotated[
        str,
        Query(min_length=1, max_length=2000, pattern=r"^/", description="the page's path"),
    ] = "/",
) -> WebMessages:
    """The messages for this visit, at most one per placement.

    Send the customer token (``Authorization: Bearer``) when the shop knows who
    the visitor is; a forged or expired token is refused rather than ignored.
    """
    ctx = context(request)
    customer = optional_customer(request)

    def lookup() -> bytes:
        rows = ctx.store.read(
            lambda conn: targeted(
                conn,
                customer=customer,
                visitor=visitor,
                returning=returning,
                referrer=referrer,
                path=path,
                now=ctx.clock(),
                max_views=ctx.api.web_max_views,
            )
        )
        return orjson.dumps({"messages": [_message(row) for row in rows]})

    # This is the hot path: every page view of every visitor of the shop. The lookup is
    # one indexed read (a fraction of a millisecond on SQLite, about one on PostgreSQL)
    # and runs on the event loop: handing it to FastAPI's thread pool cost more than the
    # query and collapsed under load (measured in bench/README.md). A process therefore
    # serves lookups one at a time — run `narrowcast serve --workers` about one per core.
    # Reads never wait for locks here (web_messages and web_views only, MVCC on
    # PostgreSQL, WAL on SQLite). The body is built straight from the rows;
    # ``response_model`` documents it.
    body = lookup()
    return Response(body, media_type="application/json")  # type: ignore[return-value]


@router.post("/v1/web-messages/{message_id}/seen", status_code=204)
def seen(message_id: MessageId, visit: Visit, request: Request) -> Response:
    """The message was shown (counts towards ``web_max_views``)."""
    return _respond(context(request), request, message_id, visit, "seen")


@router.post("/v1/web-messages/{message_id}/click", status_code=204)
def click(message_id: MessageId, visit: Visit, request: Request) -> Response:
    """The visitor followed the call to action; the message is not shown again."""
    return _respond(context(request), request, message_id, visit, "clicked")


@router.post("/v1/web-messages/{message_id}/dismiss", status_code=204)
def dismiss(message_id: MessageId, visit: Visit, request: Request) -> Response:
    """The visitor closed the message; it is not shown again."""
    return _respond(context(request), request, message_id, visit, "dismissed")


@router.post("/v1/web-messages/{message_id}/answer", status_code=204)
def answer(message_id: MessageId, given: Answer, request: Request) -> Response:
    """The visitor answered the message's survey.

    For a known customer this is an ``nps_response`` event (``score``,
    ``campaign``), the event the ``nps`` and ``nps_class`` scores read; an
    anonymous answer only ends the survey for that visitor.
    """
    return _respond(context(request), request, message_id, given, "answered", score=given.score)


@router.get("/v1/narrowcast.js", tags=["web messages"], response_class=Response)
def snippet(request: Request) -> Response:
    """The browser snippet the shop includes with ``<script src=… async>``."""
    body, etag = _snippet()
    headers = {
        "Cache-Control": "public, max-age=3600",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


def optional_customer(request: Request) -> str | None:
    """The customer a token proves, ``None`` without one; 401 for a bad one."""
    if "authorization" not in request.headers:
        return None
    return customer_from(request)


def targeted(
    conn: Connection,
    *,
    customer: str | None,
    visitor: str,
    returning: bool,
    referrer: str,
    path: str,
    now: datetime,
    max_views: int,
) -> list[dict[str, Any]]:
    """The messages for one visit (``_COLUMNS``), at most one per placement, by placement."""
    params: dict[str, Any] = {
        "keys": visitor_keys(customer, visitor),
        "visitors": ["any", "returning" if returning else "new"],
        "referrer": referrer,
        "path": path,
        "now": now,
        "max_views": max_views,
    }
    if customer is not None:
        params["customer"] = customer
    if conn.dialect.name == "postgresql":
        sql, constants = _postgresql_targeting(conn.dialect, customer is not None)
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute(sql, {**constants, **params})
            rows = cursor.fetchall()
        # ``parts`` comes as text, for orjson: psycopg's own jsonb loader is the stdlib's.
        return [
            {"id": i, "campaign": c, "placement": p, "survey": s, "parts": orjson.loads(parts)}
            for i, c, p, s, parts in rows
        ]
    statement = _targeting(conn.dialect.name, customer is not None)
    return [dict(row) for row in conn.execute(statement, params).mappings()]


_COLUMNS = ("id", "campaign", "placement", "survey", "parts")
"""What a lookup reads of each message: what ``_message`` answers with."""


@lru_cache(maxsize=8)
def _postgresql_targeting(dialect: Dialect, known_customer: bool) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL statement as psycopg's SQL text, with the values of its constants."""
    compiled = _targeting("postgresql", known_customer).compile(dialect=dialect)
    constants = {k: v for k, v in compiled.params.items() if k not in _PER_VISIT}
    return str(compiled), constants


_PER_VISIT = frozenset({"keys", "visitors", "referrer", "path", "now", "max_views", "customer"})
"""The parameters ``targeted`` passes; the statement's other parameters are its constants."""


@lru_cache(maxsize=8)
def _targeting(dialect: str, known_customer: bool) -> Select[Any]:
    """The targeting statement, built once: building it per request costs more than running it."""
    m = web_messages.c
    v = web_views.c
    finished = (
        select(v.web_message_id)
        .where(
            v.web_message_id == m.id,
            _one_of(v.visitor, "keys", dialect),
            or_(
                v.dismissed_at.is_not(None),
                v.clicked_at.is_not(None),
                v.answered_at.is_not(None),
                v.views >= bindparam("max_views", type_=Integer),
            ),
        )
        .exists()
    )
    audience = (
        or_(m.customer_id.is_(None), m.customer_id == bindparam("customer", type_=String))
        if known_customer
        else m.customer_id.is_(None)
    )
    rank = (
        func.row_number()
        .over(
            partition_by=m.placement,
            order_by=(
                case((m.customer_id.is_(None), 1), else_=0),
                m.created_at.desc(),
                m.id.desc(),
            ),
        )
        .label("rank")
    )
    candidates = (
        select(*(m[name] for name in _COLUMNS), rank)
        .where(
            audience,
            or_(m.expires_at.is_(None), m.expires_at > bindparam("now", type_=m.expires_at.type)),
            _one_of(m.visitor, "visitors", dialect),
            _referrer_matches(dialect),
            _path_matches(dialect),
            ~finished,
        )
        .subquery()
    )
    answered: list[ColumnElement[Any]] = [candidates.c[name] for name in _COLUMNS]
    if dialect == "postgresql":
        answered[-1] = cast(candidates.c.parts, Text)
    return select(*answered).where(candidates.c.rank == 1).order_by(candidates.c.placement)


def _one_of(column: ColumnElement[str], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the list parameter ``name``: one array parameter on PostgreSQL
    (the same SQL text whatever the list's length), an expanded ``IN`` on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(String)))
    return column.in_(bindparam(name, expanding=True))


def visitor_keys(customer: str | None, visitor: str) -> list[str]:
    """The ``web_views.visitor`` keys of this visitor: the anonymous id, and the customer."""
    keys = [f"v:{visitor}"]
    if customer is not None:
        keys.append(f"c:{customer}")
    return keys


def _referrer_matches(dialect: str) -> ColumnElement[bool]:
    column = web_messages.c.referrers
    if dialect == "postgresql":
        return or_(
            func.jsonb_array_length(column) == 0,
            column.op("@>")(func.jsonb_build_array(bindparam("referrer", type_=String))),
        )
    each = func.json_each(column).table_valued("value")
    return or_(
        func.json_array_length(column) == 0,
        select(each.c.value).where(each.c.value == bindparam("referrer", type_=String)).exists(),
    )


def _path_matches(dialect: str) -> ColumnElement[bool]:
    glob = web_messages.c.path
    page = bindparam("path", type_=String)
    if dialect == "postgresql":
        # LIKE's escape character is the backslash by default on PostgreSQL.
        pattern: ColumnElement[str] = glob
        for old, new in (("\\", "\\\\"), ("%", "\\%"), ("_", "\\_"), ("*", "%"), ("?", "_")):
            pattern = func.replace(pattern, old, new)
        return page.like(pattern)
    # GLOB is case-sensitive like a path; '[' is made literal so both databases agree.
    return page.op("GLOB")(func.replace(glob, "[", "[[]"))


def _respond(
    ctx: ApiContext,
    request: Request,
    message_id: int,
    visit: Visit,
    kind: str,
    *,
    score: int | None = None,
) -> Response:
    customer = optional_customer(request)
    now = ctx.clock()
    with ctx.store.begin() as conn:
        row = (
            conn.execute(select(web_messages).where(web_messages.c.id == message_id))
            .mappings()
            .first()
        )
        if row is None or row["customer_id"] not in (None, customer):
            raise HTTPException(404, f"there is no web message {message_id} for this visitor")
        if kind == "answered" and row["survey"] is None:
            raise HTTPException(422, f"web message {message_id} has no survey to answer")
        key = visitor_keys(customer, visit.visitor)[-1]
        _touch(conn, message_id, key, kind, now)
        if customer is None:
            return Response(status_code=204)
        if row["customer_id"] == customer and kind != "answered":
            column = web_messages.c[f"{kind}_at"]
            conn.execute(
                update(web_messages)
                .where(web_messages.c.id == message_id, column.is_(None))
                .values({column: now})
            )
        # A token may name a customer the shop has not sent yet; events need the row.
        if row["customer_id"] is None and not _known(conn, customer):
            return Response(status_code=204)
        record(conn, [_engagement(row, customer, kind, now, score)])
    return Response(status_code=204)


def _touch(conn: Connection, message_id: int, key: str, kind: str, now: datetime) -> None:
    """Upsert the visitor's ``web_views`` row: one more view, or the first click/dismiss/answer."""
    insert = dialect_insert(conn, web_views)
    instants = {"clicked": "clicked_at", "dismissed": "dismissed_at", "answered": "answered_at"}
    values: dict[str, Any] = {
        "web_message_id": message_id,
        "visitor": key,
        "views": 1 if kind == "seen" else 0,
        "first_seen_at": now,
        "last_seen_at": now,
    }
    updates: dict[str, Any] = {}
    if kind == "seen":
        updates = {"views": web_views.c.views + 1, "last_seen_at": now}
    else:
        column = instants[kind]
        values[column] = now
        updates = {column: func.coalesce(web_views.c[column], now)}
    conn.execute(
        insert.values(values).on_conflict_do_update(
            index_elements=["web_message_id", "visitor"], set_=updates
        )
    )


def _known(conn: Connection, customer: str) -> bool:
    found = conn.execute(select(customers.c.id).where(customers.c.id == customer)).first()
    return found is not None


def _engagement(
    row: RowMapping, customer: str, kind: str, now: datetime, score: int | None
) -> Engagement:
    common: dict[str, Any] = {
        "customer_id": customer,
        "ts": now,
        "outbox_id": row["outbox_id"],
        "campaign": row["campaign"],
        "variant": row["variant"],
        "channel": CHANNEL,
        "event_id": _event_id(row["id"], kind, customer),
    }
    if kind == "answered":
        extra = {"web_message_id": row["id"], "score": score, "survey": row["survey"]}
        # ``kind`` only has to be a known one; ``row()`` replaces the type.
        return Engagement(kind="answered", extra=extra, **common)
    return Engagement(kind=kind, extra={"web_message_id": row["id"]}, **common)


def _event_id(message_id: int, kind: str, customer: str) -> str:
    """One event per customer, message and kind (``events.event_id`` holds 128 characters)."""
    event_id = f"web:{message_id}:{kind}:{customer}"
    if len(event_id) <= 128:
        return event_id
    return f"web:{message_id}:{kind}:#{hashlib.sha256(customer.encode()).hexdigest()}"


def _message(row: Mapping[str, Any]) -> dict[str, Any]:
    """One message as ``WebMessage`` describes it."""
    parts = row["parts"] or {}
    return {
        "id": row["id"],
        "campaign": row["campaign"],
        "placement": row["placement"],
        "survey": row["survey"],
        "title": str(parts.get("title", "")),
        "body": str(parts.get("body", "")),
        "cta_label": None if parts.get("cta_label") is None else str(parts["cta_label"]),
        "cta_url": _web_url(parts.get("cta_url")),
        "image": _web_url(parts.get("image")),
    }


def _web_url(url: Any) -> str | None:
    """Only http(s) links and paths on the shop reach a page: never ``javascript:`` or ``data:``."""
    if not isinstance(url, str):
        return None
    link: str = url.strip()
    parts = urlsplit(link)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return link
    if not parts.scheme and link.startswith("/"):
        return link  # relative to the shop's page, as the snippet resolves it
    return None


@lru_cache(maxsize=1)
def _snippet() -> tuple[bytes, str]:
    body = (resources.files("narrowcast.api") / "static" / "narrowcast.js").read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:24]}"'
