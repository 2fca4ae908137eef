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
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy import Connection

from narrowcast.ingest import coerce
from narrowcast.ingest.runner import ImportOptions, ImportReport, run_import
from narrowcast.ingest.sources import Row, Source
from narrowcast.store import Store
from narrowcast.store.bulk import BatchWriter, EventWriter, StagedEvent

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
_TOP_LEVEL = frozenset({"customer_id", "type", "ts", "event_id"})

# The catalogue records property types by Python class: cheaper per row than
# looking at every value, and the same answer for event properties.
_KIND_OF_CLASS: dict[type, str] = {
    str: "text",
    int: "number",
    float: "number",
    bool: "bool",
    list: "list",
    dict: "object",
}


@dataclass(frozen=True, slots=True)
class _Shape:
    """What parsing needs to know about rows of one type with the same field names."""

    top_level: tuple[str, ...]
    """The fields that are not properties, to remove."""
    checks: tuple[tuple[str, Check], ...]
    """The standard properties present, with their checks, in vocabulary order."""
    required: tuple[str, ...]


_fromisoformat = datetime.fromisoformat
_dumps = orjson.dumps


class EventSink:
    """Parses event rows and writes them through the store's ``EventWriter``.

    ``parse`` is the hot path of every import, so the common case — known
    type, known property names, a string timestamp — costs a few set
    operations; the careful checks with their messages run for what is new.
    """

    def __init__(
        self,
        conn: Connection,
        report: ImportReport,
        *,
        infer: bool,
        default_tz: tzinfo | None,
        rebuild_indexes_above: float | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        """``writer``: what writes the parsed batches (default: the import's staging
        ``EventWriter``; the HTTP API passes one made for small batches)."""
        self._writer: BatchWriter = writer or EventWriter(
            conn, rebuild_indexes_above=rebuild_indexes_above
        )
        self._encode_ts = self._writer.encode_ts
        self._report = report
        self._infer = infer
        self._default_tz = default_tz
        self._good_types: set[str] = set()
        self._good_names: set[str] = set()
        self._catalogued: dict[str, set[str]] = {}
        self._new_kinds: list[tuple[str, str, str]] = []
        self._shapes: dict[tuple[str, tuple[str, ...]], _Shape] = {}
        self._now = datetime.now(UTC)

    def parse(self, row: Row) -> StagedEvent:
        fields = row.fields
        assert fields is not None
        customer = fields.get("customer_id")
        if type(customer) is not str or not 0 < len(customer) <= 128:
            customer = _customer_id(customer)
        kind = fields.get("type")
        if type(kind) is not str or kind not in self._good_types:
            if not isinstance(kind, str) or not _TYPE.fullmatch(kind):
                raise ValueError(_type_reason(kind))
            self._good_types.add(kind)
        text = fields.get("ts")
        ts = None
        if type(text) is str:
            # The usual case inline; anything unusual (spaces, no offset, not a
            # timestamp at all) gets the careful path and its message.
            try:
                ts = _fromisoformat(text)
            except ValueError:
                ts = None
            if ts is not None and ts.tzinfo is not None:
                try:
                    ts = ts.astimezone(UTC)
                except OverflowError:
                    ts = None
            else:
                ts = None
        if ts is None:
            if "ts" not in fields:
                raise ValueError("ts: missing — every event needs its ISO 8601 timestamp")
            ts = coerce.instant(text, "ts", self._default_tz)
        event_id = fields.get("event_id")
        if event_id is not None:
            event_id = coerce.text(event_id, "event_id", 128) or None
        shape = None if self._infer else self._shapes.get((kind, tuple(fields)))
        if shape is None:
            properties = self._properties(kind, fields)
        else:
            # A row shaped like one seen before: the names are known to be good and
            # catalogued, so only the values of checked properties need a look.
            properties = fields.copy()
            for key in shape.top_level:
                del properties[key]
            for key, check in shape.checks:
                value = properties[key]
                if value is not None:
                    properties[key] = check(value, key)
            for key in shape.required:
                if properties[key] is None:
                    raise ValueError(f"{key}: missing — a {kind} event needs it")
        value = properties.get("value")
        if value is not None and value.__class__ is not float:
            value = coerce.number(value, "value")
        return (
            row.line,
            event_id,
            customer,
            kind,
            self._encode_ts(ts),
            value,
            _dumps(properties).decode(),
        )

    def _properties(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The checked properties of a row, the careful way; remembers the row's shape."""
        properties = {key: value for key, value in fields.items() if key not in _TOP_LEVEL}
        nested = "properties" in fields
        if nested:
            properties = _merge_nested(fields["properties"], properties)
        if not properties.keys() <= self._good_names:
            for key in properties.keys() - self._good_names:
                self._good_names.add(coerce.name(key, "property"))
        if self._infer:
            properties = {
                k: coerce.infer(v) if isinstance(v, str) else v for k, v in properties.items()
            }
        checks = VOCABULARY.get(kind)
        if checks is not None:
            for key in checks.keys() & properties.keys():
                if properties[key] is not None:
                    properties[key] = checks[key](properties[key], key)
            for key in REQUIRED.get(kind, ()):
                if properties.get(key) is None:
                    raise ValueError(f"{key}: missing — a {kind} event needs it")
        catalogued = self._catalogued.setdefault(kind, set())
        if not properties.keys() <= catalogued:
            for key in properties.keys() - catalogued:
                if properties[key] is not None:
                    catalogued.add(key)
                    self._new_kinds.append(
                        (kind, key, _KIND_OF_CLASS.get(type(properties[key]), "text"))
                    )
        if not nested and not self._infer and properties.keys() <= catalogued:
            self._shapes[kind, tuple(fields)] = _Shape(
                top_level=tuple(key for key in fields if key in _TOP_LEVEL),
                checks=tuple(
                    (key, check) for key, check in (checks or {}).items() if key in properties
                ),
                required=tuple(key for key in REQUIRED.get(kind, ()) if key in properties),
            )
        return properties

    def writer(self, items: list[StagedEvent]) -> Callable[[], list[tuple[int, str]]]:
        # Staging is per-row driver work that needs the GIL, so it runs here;
        # the long statements that follow run on the writer thread.
        self._writer.stage(items)
        new_kinds, self._new_kinds = self._new_kinds, []
        return lambda: self._write(len(items), new_kinds)

    def finish(self) -> None:
        self._writer.close()

    def abandon(self) -> None:
        self._writer.abandon()

    def _write(self, staged: int, new_kinds: list[tuple[str, str, str]]) -> list[tuple[int, str]]:
        result = self._writer.move(staged)
        self._report.inserted += result.inserted
        self._report.duplicates += result.duplicates
        self._writer.catalogue(new_kinds, self._now)
        return [
            (line, f"customer_id: no customer {customer!r} in the store — import customers first")
            for line, customer in result.unknown_customers
        ]


def _customer_id(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("customer_id: missing — every event needs the customer it belongs to")
    return coerce.text(value, "customer_id", 128)


def _merge_nested(nested: Any, properties: dict[str, Any]) -> dict[str, Any]:
    del properties["properties"]
    if nested is None:
        return properties
    if not isinstance(nested, dict):
        raise ValueError("properties: expected a JSON object of event properties")
    return {**nested, **properties}


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
        return EventSink(
            conn,
            report,
            infer=source.format == "csv",
            default_tz=default_tz,
            rebuild_indexes_above=options.rebuild_indexes_above,
        )

    return run_import(store, source, "events", sink, options)


def _type_reason(kind: Any) -> str:
    if kind is None or kind == "":
        return "type: missing — every event needs a type such as order or page_view"
    suggestion = re.sub(r"[^a-z0-9_]+", "_", str(kind).strip().lower()).strip("_")
    return f"type: {kind!r} is not a valid event type — use lower-case letters, digits and _" + (
        f" (e.g. {suggestion!r})" if suggestion and _TYPE.fullmatch(suggestion) else ""
    )
