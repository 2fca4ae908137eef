"""``narrowcast import customers``: the single customer view, upserted by id.

Merge rules (the same as Braze's CSV import, so nothing is lost by accident):

* a known column with a value sets it; an empty CSV cell or an absent JSONL
  key leaves the stored value alone; an explicit JSONL ``null`` clears it;
* every other column becomes a key of ``attributes`` (merged into what is
  there; JSONL ``null`` removes the key), and its inferred type is recorded
  in ``attribute_keys`` so segment rules can use it without declaring it;
* ``email_consent``, ``push_consent`` (and ``sms_``, ``in_app_``, ``web_``)
  set marketing consent for that channel, with the file as its source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from sqlalchemy import Connection

from narrowcast.ingest import coerce
from narrowcast.ingest.runner import ImportOptions, ImportReport, run_import
from narrowcast.ingest.sources import Row, Source
from narrowcast.store import Store
from narrowcast.store.bulk import fetch_by_key, insert_ignoring_conflicts, upsert
from narrowcast.store.schema import CHANNELS, CUSTOMER_TYPES, attribute_keys, consents, customers

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ().\-]{3,30}")
_LOCALE = re.compile(r"([a-zA-Z]{2,3})(?:[-_]([a-zA-Z]{2}|[0-9]{3}))?")
_COUNTRY = re.compile(r"[A-Z]{2}")


def _email(value: Any, field: str) -> str:
    result = coerce.text(value, field, 320)
    if not _EMAIL.fullmatch(result):
        raise ValueError(f"{field}: {value!r} is not an email address")
    return result


def _phone(value: Any, field: str) -> str:
    result = coerce.text(value, field, 32)
    if not _PHONE.fullmatch(result):
        raise ValueError(f"{field}: {value!r} is not a phone number (e.g. +34 600 123 456)")
    return result


def _country(value: Any, field: str) -> str:
    result = coerce.text(value, field, 2).upper()
    if not _COUNTRY.fullmatch(result):
        raise ValueError(f"{field}: expected a two-letter ISO country code like ES, got {value!r}")
    return result


def _locale(value: Any, field: str) -> str:
    match = _LOCALE.fullmatch(coerce.text(value, field, 16))
    if match is None:
        raise ValueError(f"{field}: expected a locale like es, es-ES or pl-PL, got {value!r}")
    language, region = match.groups()
    return f"{language.lower()}-{region.upper()}" if region else language.lower()


def _customer_type(value: Any, field: str) -> str:
    result = coerce.text(value, field, 16).lower()
    if result not in CUSTOMER_TYPES:
        raise ValueError(f"{field}: expected one of {', '.join(CUSTOMER_TYPES)}, got {value!r}")
    return result


def _birth_date(value: Any, field: str) -> date:
    result = coerce.calendar_date(value, field)
    if result.year < 1900 or result > datetime.now(UTC).date():
        raise ValueError(f"{field}: {value!r} is not a plausible birth date")
    return result


def _short(limit: int) -> Callable[[Any, str], str]:
    return lambda value, field: coerce.text(value, field, limit)


COLUMNS: dict[str, Callable[[Any, str], Any]] = {
    "email": _email,
    "phone": _phone,
    "first_name": _short(100),
    "last_name": _short(100),
    "birth_date": _birth_date,
    "gender": _short(32),
    "country": _country,
    "region": _short(100),
    "city": _short(100),
    "neighborhood": _short(100),
    "timezone": coerce.time_zone,
    "locale": _locale,
    "customer_type": _customer_type,
}
CONSENT_COLUMNS = {f"{channel}_consent": channel for channel in CHANNELS}


@dataclass
class CustomerChange:
    """What one row says about one customer."""

    line: int
    id: str
    values: dict[str, Any] = field(default_factory=dict)
    """Known columns to set; a ``None`` value clears the column."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Attributes to merge; a ``None`` value removes the key."""
    consents: dict[str, bool] = field(default_factory=dict)
    created_at: datetime | None = None


class CustomerSink:
    def __init__(
        self,
        conn: Connection,
        report: ImportReport,
        *,
        infer: bool,
        default_tz: tzinfo | None,
        source_name: str,
        consent_source: str | None = None,
    ) -> None:
        """``consent_source``: what consents given in these rows record as their source
        (default ``import:<file name>``)."""
        self._conn = conn
        self._report = report
        self._infer = infer
        self._default_tz = default_tz
        self._source = (consent_source or f"import:{source_name}")[:200]
        self._known_keys: set[str] = set()

    def parse(self, row: Row) -> CustomerChange:
        assert row.fields is not None
        raw_id = row.fields.get("id")
        if raw_id is None or raw_id == "":
            raise ValueError("id: missing — every customer needs the shop's customer id")
        change = CustomerChange(row.line, coerce.text(raw_id, "id", 128))
        for key, value in row.fields.items():
            if key == "id":
                continue
            if key == "created_at":
                change.created_at = coerce.instant(value, key, self._default_tz)
            elif key in COLUMNS:
                change.values[key] = None if value is None else COLUMNS[key](value, key)
            elif key in CONSENT_COLUMNS:
                if value is not None:
                    change.consents[CONSENT_COLUMNS[key]] = coerce.boolean(value, key)
            else:
                coerce.name(key, "column")
                if self._infer and isinstance(value, str):
                    value = coerce.infer(value)
                change.attributes[key] = value
        if not change.id:
            raise ValueError("id: missing — every customer needs the shop's customer id")
        return change

    def writer(self, items: list[CustomerChange]) -> Callable[[], list[tuple[int, str]]]:
        return lambda: self._write(items)

    def _write(self, items: list[CustomerChange]) -> list[tuple[int, str]]:
        now = datetime.now(UTC)
        merged: dict[str, dict[str, Any]] = {}
        existing = fetch_by_key(self._conn, customers, "id", list({c.id for c in items}))
        consent_rows: dict[tuple[str, str], dict[str, Any]] = {}
        new_keys: dict[str, str] = {}
        for change in items:
            row = merged.get(change.id)
            if row is None:
                stored = existing.get(change.id)
                row = dict(stored) if stored is not None else _blank(change.id, now)
                row["attributes"] = dict(row["attributes"] or {})
                merged[change.id] = row
            _apply(row, change, now)
            for key, value in change.attributes.items():
                if value is not None and key not in self._known_keys:
                    new_keys.setdefault(key, coerce.kind(value))
            for channel, granted in change.consents.items():
                consent_rows[(change.id, channel)] = {
                    "customer_id": change.id,
                    "channel": channel,
                    "purpose": "marketing",
                    "granted": granted,
                    "source": self._source,
                    "updated_at": now,
                }
        upsert(self._conn, customers, list(merged.values()), ["id"])
        upsert(
            self._conn,
            consents,
            list(consent_rows.values()),
            ["customer_id", "channel", "purpose"],
            changed_when="granted",
        )
        if new_keys:
            rows = [{"key": k, "value_type": t, "first_seen_at": now} for k, t in new_keys.items()]
            insert_ignoring_conflicts(self._conn, attribute_keys, rows, ["key"])
            self._known_keys.update(new_keys)
        self._report.updated += sum(1 for cid in merged if cid in existing)
        self._report.inserted += sum(1 for cid in merged if cid not in existing)
        return []

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass


def _blank(customer_id: str, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {column: None for column in COLUMNS}
    row.update(id=customer_id, customer_type="individual", created_at=now, attributes={})
    return row


def _apply(row: dict[str, Any], change: CustomerChange, now: datetime) -> None:
    row.update(change.values)
    if row["customer_type"] is None:
        row["customer_type"] = "individual"
    if change.created_at is not None:
        row["created_at"] = change.created_at
    attributes = row["attributes"]
    for key, value in change.attributes.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    row["updated_at"] = now


def import_customers(
    store: Store,
    source: Source,
    options: ImportOptions | None = None,
    *,
    default_tz: tzinfo | None = None,
) -> ImportReport:
    """Upsert every customer in ``source``; see ``run_import`` for all-or-nothing."""
    options = options or ImportOptions()

    def sink(conn: Connection, report: ImportReport) -> CustomerSink:
        return CustomerSink(
            conn,
            report,
            infer=source.format == "csv",
            default_tz=default_tz,
            source_name=source.path.name if source.path else "stdin",
        )

    return run_import(store, source, "customers", sink, options)
