"""``narrowcast import events``: behaviour the segments are computed from.

Each row is one event: ``customer_id``, ``type``, ``ts`` (ISO 8601 with a UTC
offset), an optional ``event_id`` (a re-sent event with the same id is
skipped), and any other field — or a ``properties`` object — as properties.
The standard vocabulary below is checked, so a typo'd order value fails at
import time instead of silently skewing a segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy import Connection

from narrowcast.ingest import coerce
from narrowcast.ingest.runner import ImportOptions, ImportReport, run_import
from narrowcast.ingest.sources import Row, Source
from narrowcast.store import Store
from narrowcast.store.bulk import EventWriter, StagedEvent

_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")

Check = Callable[[Any, str], Any]


def _text(value: Any, field: str) -> str:
    return coerce.text(value, field, 500)


def _non_negative(value: Any, field: str) -> float:
    result = coerce.number(value, field)
    if result < 0:
        raise ValueError(f"{field}: expected a number of 0 or more, got {value!r}")
    return result


def _count(value: Any, field: str) -> int:
    return coerce.integer(value, field, 0, 1_000_000)


def _score(value: Any, field: str) -> int:
    return coerce.integer(value, field, 0, 10)


def _currency(value: Any, field: str) -> str:
    code = coerce.text(value, field, 3).upper()
    if not _CURRENCY.fullmatch(code):
        raise ValueError(f"{field}: expected an ISO 4217 currency code like EUR, got {value!r}")
    return code


_PRODUCT: dict[str, Check] = {
    "product": _text,
    "category": _text,
    "brand": _text,
    "value": _non_negative,
    "quantity": _count,
    "duration_s": _non_negative,
}

VOCABULARY: dict[str, dict[str, Check]] = {
    "order": {
        "value": _non_negative,
        "currency": _currency,
        "items": _count,
        "category": _text,
        "brand": _text,
        "coupon": _text,
        "device": _text,
        "channel": _text,
    },
    "return": {"value": _non_negative, "currency": _currency, "items": _count},
    "session_start": {"device": _text, "source": _text, "referrer": _text},
    "page_view": {"page": _text, "category": _text, "duration_s": _non_negative},
    "product_view": _PRODUCT,
    "cart_add": _PRODUCT,
    "checkout_start": {"value": _non_negative, "currency": _currency, "items": _count},
    "recommendation_click": _PRODUCT,
    "nps_response": {"score": _score},
}
"""The standard event types and the properties whose form narrowcast checks.

Other properties and other event types are accepted as they are.
"""

REQUIRED: dict[str, tuple[str, ...]] = {"nps_response": ("score",)}


class EventSink:
    """Parses event rows and writes them through the store's ``EventWriter``."""

    def __init__(
        self, conn: Connection, report: ImportReport, *, infer: bool, default_tz: tzinfo | None
    ) -> None:
        self._writer = EventWriter(conn)
        self._encode_ts = self._writer.encode_ts
        self._report = report
        self._infer = infer
        self._default_tz = default_tz
        self._seen: set[tuple[str, str, str]] = set()
        self._now = datetime.now(UTC)

    def parse(self, row: Row) -> StagedEvent:
        assert row.fields is not None
        fields = dict(row.fields)
        customer = fields.pop("customer_id", None)
        if customer is None or customer == "":
            raise ValueError("customer_id: missing — every event needs the customer it belongs to")
        customer = coerce.text(customer, "customer_id", 128)
        kind = fields.pop("type", None)
        if not isinstance(kind, str) or not _TYPE.fullmatch(kind):
            raise ValueError(_type_reason(kind))
        if "ts" not in fields:
            raise ValueError("ts: missing — every event needs its ISO 8601 timestamp")
        ts = coerce.instant(fields.pop("ts"), "ts", self._default_tz)
        event_id = fields.pop("event_id", None)
        if event_id is not None:
            event_id = coerce.text(event_id, "event_id", 128) or None
        properties = self._properties(kind, fields)
        value = properties.get("value")
        if value is not None:
            value = coerce.number(value, "value")
        for key, item in properties.items():
            self._seen.add((kind, key, coerce.kind(item)))
        return (
            row.line,
            event_id,
            customer,
            kind,
            self._encode_ts(ts),
            value,
            orjson.dumps(properties).decode(),
        )

    def flush(self, items: list[StagedEvent]) -> list[tuple[int, str]]:
        result = self._writer.write(items)
        self._report.inserted += result.inserted
        self._report.duplicates += result.duplicates
        self._writer.catalogue(self._seen, self._now)
        self._seen.clear()
        return [
            (line, f"customer_id: no customer {customer!r} in the store — import customers first")
            for line, customer in result.unknown_customers
        ]

    def finish(self) -> None:
        self._writer.close()

    def _properties(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        nested = fields.pop("properties", None)
        if nested is not None:
            if not isinstance(nested, dict):
                raise ValueError("properties: expected a JSON object of event properties")
            fields = {**nested, **fields}
        checks = VOCABULARY.get(kind, {})
        properties: dict[str, Any] = {}
        for key, value in fields.items():
            coerce.name(key, "property")
            if self._infer and isinstance(value, str):
                value = coerce.infer(value)
            check = checks.get(key)
            if check is not None and value is not None:
                value = check(value, key)
            properties[key] = value
        for key in REQUIRED.get(kind, ()):
            if properties.get(key) is None:
                raise ValueError(f"{key}: missing — a {kind} event needs it")
        return properties


def import_events(
    store: Store,
    source: Source,
    options: ImportOptions | None = None,
    *,
    default_tz: tzinfo | None = None,
) -> ImportReport:
    """Import an events file; see ``run_import`` for the all-or-nothing rules."""
    options = options or ImportOptions()

    def sink(conn: Connection, report: ImportReport) -> EventSink:
        return EventSink(conn, report, infer=source.format == "csv", default_tz=default_tz)

    return run_import(store, source, "events", sink, options)


def _type_reason(kind: Any) -> str:
    if kind is None or kind == "":
        return "type: missing — every event needs a type such as order or page_view"
    suggestion = re.sub(r"[^a-z0-9_]+", "_", str(kind).strip().lower()).strip("_")
    return f"type: {kind!r} is not a valid event type — use lower-case letters, digits and _" + (
        f" (e.g. {suggestion!r})" if suggestion and _TYPE.fullmatch(suggestion) else ""
    )
