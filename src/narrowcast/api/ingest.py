"""Server-to-server ingest: the shop's backend sends events, customers and push tokens.

The same records as ``narrowcast import``, one batch per request, so a shop can
stream what it used to export nightly. Every item is parsed by the importers'
own sinks (``EventSink``, ``CustomerSink``) — one validator, one set of
messages — and written by their writers in one transaction per request.

A request is all-or-nothing, like an import: if any item is bad, nothing is
written and the 422 lists every bad item::

    {"detail": [{"index": 3, "field": "ts", "message": "'yesterday' is not an ISO 8601 …"}]}

``index`` is the item's position in the batch (``null`` for a problem with the
body as a whole). An event for a customer the store does not know is such an
error too: events hang off customers (segments, consent, the outbox all need
the customer), so the shop must ``POST /v1/customers`` first. Silently dropping
the event would lose it; storing it would break the foreign key.

Too many items for ``[api] max_batch`` is 413, like a body over
``max_body_bytes``: the client's fix for both is the same — split the batch.

The bodies are read with orjson and checked by the importers' code rather than
by pydantic models, because ``POST /v1/events`` is the hot path (see
``bench/api_bench.py``); the pydantic models below only describe the bodies in
the OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, select

from narrowcast.api.context import ApiContext, require_api_key
from narrowcast.api.event_writer import DirectEventWriter
from narrowcast.ingest.customers import CustomerChange, CustomerSink
from narrowcast.ingest.events import EventSink
from narrowcast.ingest.runner import ImportReport
from narrowcast.ingest.sources import Row
from narrowcast.store.bulk import StagedEvent, dialect_insert
from narrowcast.store.schema import PLATFORMS, customers, device_tokens

router = APIRouter(tags=["ingest"])

Server = Annotated[ApiContext, Depends(require_api_key)]


# --- what the OpenAPI schema shows (not used to parse: see the module docstring) ---------


class Event(BaseModel):
    """One event, as in an events JSONL file; any other field is a property."""

    model_config = ConfigDict(extra="allow")

    customer_id: str = Field(min_length=1, max_length=128)
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["order"])
    ts: str = Field(
        description="ISO 8601 with a UTC offset", examples=["2025-03-01T18:30:00+01:00"]
    )
    event_id: str | None = Field(
        None, max_length=128, description="a re-sent event with the same id is skipped"
    )
    properties: dict[str, Any] | None = Field(
        None, description="properties, merged with the item's other fields"
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(description="at most [api] max_batch items (default 1000)")


class Customer(BaseModel):
    """One customer, as in a customers JSONL file; any other field is an attribute.

    An absent field leaves the stored value alone; ``null`` clears it.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=128, description="the shop's customer id")
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = Field(None, description="YYYY-MM-DD")
    gender: str | None = None
    country: str | None = Field(None, description="ISO 3166-1 alpha-2, e.g. ES")
    region: str | None = None
    city: str | None = None
    neighborhood: str | None = None
    timezone: str | None = Field(None, description="IANA zone, e.g. Europe/Madrid")
    locale: str | None = Field(None, description="e.g. es-ES")
    customer_type: Literal["individual", "corporate", "government"] | None = None
    created_at: str | None = Field(None, description="ISO 8601 with a UTC offset")
    email_consent: bool | None = None
    push_consent: bool | None = None
    sms_consent: bool | None = None
    in_app_consent: bool | None = None
    web_consent: bool | None = None


class CustomerBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[Customer] = Field(description="at most [api] max_batch items (default 1000)")


class PushToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=128)
    platform: Literal["ios", "android", "web"]
    token: str = Field(min_length=1, max_length=4096)


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events stored by this request")
    duplicates: int = Field(description="events skipped because their event_id was already sent")


class CustomersStored(BaseModel):
    inserted: int
    updated: int


class PushTokenStored(BaseModel):
    created: bool = Field(description="false when the token was known (and is now refreshed)")
    moved: bool = Field(description="true when the token belonged to another customer before")


class ItemError(BaseModel):
    index: int | None = Field(description="position in the batch; null for the body as a whole")
    field: str | None
    message: str


class ItemErrors(BaseModel):
    detail: list[ItemError]


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined (a ``$ref`` to ``#/$defs`` would
    point at the OpenAPI document's root, where there is nothing)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(model)}},
        }
    }


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong API key"},
    413: {"description": "body over [api] max_body_bytes, or more items than [api] max_batch"},
    422: {"model": ItemErrors, "description": "bad items; nothing was written"},
    503: {"description": "no API key configured ([api] api_key_env)"},
}


# --- endpoints ----------------------------------------------------------------------------


@router.post(
    "/v1/events",
    openapi_extra=_documented(EventBatch),
    responses=_REFUSALS,
)
async def post_events(request: Request, ctx: Server) -> EventsAccepted:
    """Store a batch of events (the events JSONL schema), all or nothing.

    Each event needs a known customer (``POST /v1/customers`` first), a
    ``type`` and a ``ts`` with a UTC offset; the standard types' properties
    are checked as on import. Events whose ``event_id`` was sent before are
    skipped and counted as ``duplicates``, so a batch can safely be re-sent
    after a timeout.
    """
    items = _items(await request.body(), "events", ctx.api.max_batch)
    return await run_in_threadpool(_store_events, ctx, items)


@router.post(
    "/v1/customers",
    openapi_extra=_documented(CustomerBatch),
    responses=_REFUSALS,
)
async def post_customers(request: Request, ctx: Server) -> CustomersStored:
    """Insert or update a batch of customers (the customers import schema), all or nothing.

    Upserted by ``id`` with the importer's merge rules: an absent field keeps
    the stored value, ``null`` clears it, other fields merge into the
    customer's attributes, ``<channel>_consent`` sets marketing consent.
    """
    items = _items(await request.body(), "customers", ctx.api.max_batch)
    return await run_in_threadpool(_store_customers, ctx, items)


@router.post(
    "/v1/push-tokens",
    openapi_extra=_documented(PushToken),
    responses=_REFUSALS,
)
async def post_push_token(request: Request, ctx: Server) -> PushTokenStored:
    """Register a device's push token for a customer.

    A token seen before is moved to this customer (a shared device that
    changed hands), its ``last_seen_at`` is bumped and an earlier
    invalidation cleared — the app only sends tokens its push SDK just
    confirmed.
    """
    body = await request.body()
    try:
        token = PushToken.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(422, [_pydantic_error(error) for error in exc.errors()]) from None
    return await run_in_threadpool(_store_push_token, ctx, token)


# --- the work, on a worker thread --------------------------------------------------------


def _store_events(ctx: ApiContext, items: list[Any]) -> EventsAccepted:
    report = ImportReport(kind="events", source="POST /v1/events")
    with ctx.store.begin() as conn:
        writer = DirectEventWriter(conn, ctx.event_catalogue)
        sink = EventSink(conn, report, infer=False, default_tz=None, writer=writer)
        staged: list[StagedEvent] = []
        errors: list[dict[str, Any]] = []
        for index, fields in enumerate(items):
            if type(fields) is not dict:
                errors.append(_not_an_object(index, fields))
                continue
            try:
                staged.append(sink.parse(Row(index, fields)))
            except ValueError as exc:
                errors.append(_error(index, str(exc)))
        refused = [] if errors else sink.writer(staged)()
        if errors or refused:
            sink.abandon()  # the transaction rolls back: nothing was catalogued either
        else:
            sink.finish()
        if errors:
            raise HTTPException(422, errors)
        if refused:
            # Raised inside the transaction: the known customers' events go too.
            customer_at = {event[0]: event[2] for event in staged}
            raise HTTPException(
                422,
                [
                    {
                        "index": index,
                        "field": "customer_id",
                        "message": f"no customer {customer_at[index]!r} in the store — "
                        "POST /v1/customers first",
                    }
                    for index, _ in refused
                ],
            )
    return EventsAccepted(accepted=report.inserted, duplicates=report.duplicates)


def _store_customers(ctx: ApiContext, items: list[Any]) -> CustomersStored:
    report = ImportReport(kind="customers", source="POST /v1/customers")
    with ctx.store.begin() as conn:
        sink = CustomerSink(
            conn,
            report,
            infer=False,
            default_tz=None,
            source_name="api",
            consent_source="api: POST /v1/customers",
        )
        changes: list[CustomerChange] = []
        errors: list[dict[str, Any]] = []
        for index, fields in enumerate(items):
            if type(fields) is not dict:
                errors.append(_not_an_object(index, fields))
                continue
            try:
                changes.append(sink.parse(Row(index, fields)))
            except ValueError as exc:
                errors.append(_error(index, str(exc)))
        if errors:
            raise HTTPException(422, errors)
        if changes:
            sink.writer(changes)()
        sink.finish()
    return CustomersStored(inserted=report.inserted, updated=report.updated)


def _store_push_token(ctx: ApiContext, token: PushToken) -> PushTokenStored:
    now = ctx.clock()
    with ctx.store.begin() as conn:
        if conn.execute(select(customers.c.id).where(customers.c.id == token.customer_id)).first():
            before = conn.execute(
                select(device_tokens.c.customer_id).where(device_tokens.c.token == token.token)
            ).scalar_one_or_none()
            _upsert_token(conn, token, now)
            return PushTokenStored(
                created=before is None, moved=before is not None and before != token.customer_id
            )
    raise HTTPException(
        422,
        [
            {
                "index": None,
                "field": "customer_id",
                "message": f"no customer {token.customer_id!r} in the store — "
                "POST /v1/customers first",
            }
        ],
    )


def _upsert_token(conn: Connection, token: PushToken, now: Any) -> None:
    statement = dialect_insert(conn, device_tokens).values(
        customer_id=token.customer_id,
        platform=token.platform,
        token=token.token,
        created_at=now,
        last_seen_at=now,
        invalidated_at=None,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["token"],
            set_={
                "customer_id": statement.excluded.customer_id,
                "platform": statement.excluded.platform,
                "last_seen_at": statement.excluded.last_seen_at,
                "invalidated_at": None,
            },
        )
    )


# --- reading a batch body ----------------------------------------------------------------

_JSON_NAMES: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
    dict: "an object",
}


def _items(body: bytes, key: str, max_batch: int) -> list[Any]:
    """The list under ``key`` in a ``{key: [...]}`` body; 422 or 413 with the reason."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _body_error(
            None, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if type(parsed) is not dict:
        raise _body_error(
            None,
            f'expected a JSON object like {{"{key}": [...]}}, got {_JSON_NAMES[type(parsed)]}',
        )
    if parsed.keys() != {key}:
        unknown = sorted(parsed.keys() - {key})
        if unknown:
            raise _body_error(
                unknown[0],
                f"unknown field {unknown[0]!r} in the body — it takes only {key!r}",
            )
        raise _body_error(key, f'missing — send {{"{key}": [...]}}')
    items = parsed[key]
    if type(items) is not list:
        raise _body_error(key, f"expected an array of objects, got {_JSON_NAMES[type(items)]}")
    if b"\\u0000" in body:  # only then walk the items: the store cannot hold a NUL
        refused = [
            {
                "index": index,
                "field": where,
                "message": f"{where}: contains a NUL character (\\u0000)",
            }
            for index, item in enumerate(items)
            for where in _nul_fields(item, "")
        ]
        if refused:
            raise HTTPException(422, refused)
    if len(items) > max_batch:
        raise HTTPException(
            413,
            [
                {
                    "index": None,
                    "field": key,
                    "message": f"{len(items):,} {key} in one request; at most {max_batch:,} — "
                    "split the batch (or raise [api] max_batch)",
                }
            ],
        )
    return items


def _nul_fields(value: Any, where: str) -> list[str]:
    """Where ``value`` (a decoded JSON item) holds a NUL in a key or a string."""
    if isinstance(value, str):
        return [where or "(item)"] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, inner in value.items():
            path = f"{where}.{key}" if where else str(key)
            found += [path] if "\x00" in str(key) else _nul_fields(inner, path)
        return found
    if isinstance(value, list):
        return [f for i, inner in enumerate(value) for f in _nul_fields(inner, f"{where}[{i}]")]
    return []


def _body_error(field: str | None, message: str) -> HTTPException:
    return HTTPException(422, [{"index": None, "field": field, "message": message}])


def _not_an_object(index: int, value: Any) -> dict[str, Any]:
    got = _JSON_NAMES.get(type(value), type(value).__name__)
    return {"index": index, "field": None, "message": f"expected a JSON object, got {got}"}


# The importers' reasons start with the field ("ts: …") or name it ("property 'x y' is …").
_FIELD_FIRST = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): (.*)", re.DOTALL)
_NAMED = re.compile(r"(?:property|column) '(.*?)' ")


def _error(index: int, reason: str) -> dict[str, Any]:
    match = _FIELD_FIRST.fullmatch(reason)
    if match is not None:
        return {"index": index, "field": match[1], "message": match[2]}
    named = _NAMED.match(reason)
    return {"index": index, "field": named[1] if named else None, "message": reason}


def _pydantic_error(error: Any) -> dict[str, Any]:
    location = [str(part) for part in error["loc"]]
    if error["type"] == "json_invalid":
        return {
            "index": None,
            "field": None,
            "message": f"the body is not valid JSON: {error['msg']}",
        }
    if error["type"] == "extra_forbidden":
        return {
            "index": None,
            "field": ".".join(location),
            "message": f"unknown field — it takes only {', '.join(PushToken.model_fields)}",
        }
    if error["type"] == "literal_error" and location == ["platform"]:
        message = f"expected one of {', '.join(PLATFORMS)}, got {error.get('input')!r}"
        return {"index": None, "field": "platform", "message": message}
    return {"index": None, "field": ".".join(location) or None, "message": error["msg"]}
