"""``import_events``: what is stored, what is refused and where, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from narrowcast.ingest import ImportFailed, ImportOptions, ImportReport, import_events, open_source
from narrowcast.ingest.coerce import zone
from narrowcast.store import Store
from tests.ingest.exports import write_rows
from tests.ingest.store_contents import (
    add_customers,
    property_types,
    row_counts,
    snapshot,
    stored_events,
)


def run(store: Store, path: Path, *, tz: str | None = None, **options: Any) -> ImportReport:
    return import_events(
        store, open_source(path), ImportOptions(**options), default_tz=zone(tz) if tz else None
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- bad rows -----------------------------------------------------------------
#
# Every file has good rows around one bad row on line 3, so the error must name
# line 3 and nothing — not even the good rows before it — may be stored.

CSV_HEADER = b"customer_id,type,ts,value,score\n"
CSV_GOOD = b"c1,order,2025-03-01T10:00:00+01:00,10,\n"
CSV_AFTER = b"c2,page_view,2025-03-01T11:00:00Z,,\n"
JSONL_GOOD = (
    b'{"customer_id": "c1", "type": "order", "ts": "2025-03-01T10:00:00+01:00", "value": 10}\n'
    b'{"customer_id": "c2", "type": "page_view", "ts": "2025-03-01T11:00:00Z"}\n'
)
JSONL_AFTER = b'{"customer_id": "c2", "type": "cart_add", "ts": "2025-03-01T12:00:00Z"}\n'
TS = "2025-03-01T10:00:00Z"


def csv_with(bad: bytes) -> bytes:
    return CSV_HEADER + CSV_GOOD + bad + b"\n" + CSV_AFTER


def jsonl_with(bad: dict[str, Any] | bytes) -> bytes:
    line = bad if isinstance(bad, bytes) else orjson.dumps(bad)
    return JSONL_GOOD + line + b"\n" + JSONL_AFTER


def event(**fields: Any) -> dict[str, Any]:
    return {"customer_id": "c1", "type": "order", "ts": TS} | fields


BAD_ROWS = [
    # CSV
    pytest.param(
        "e.csv",
        csv_with(b"c1,order,yesterday,10,"),
        "ts: 'yesterday' is not an ISO 8601 timestamp",
        id="csv-bad-timestamp",
    ),
    pytest.param(
        "e.csv",
        csv_with(b"c1,order,2025-03-01 10:00,10,"),
        "ts: '2025-03-01 10:00' has no UTC offset",
        id="csv-naive-timestamp",
    ),
    pytest.param(
        "e.csv",
        csv_with(b"c1,order,0001-01-01T00:30:00+01:00,10,"),
        "ts: '0001-01-01T00:30:00+01:00' is out of range",
        id="csv-timestamp-before-year-1-utc",
    ),
    pytest.param(
        "e.csv",
        csv_with(b"c1,order,,10,"),
        "ts: missing — every event needs its ISO 8601 timestamp",
        id="csv-missing-timestamp",
    ),
    pytest.param(
        "e.csv",
        csv_with(f",order,{TS},10,".encode()),
        "customer_id: missing — every event needs the customer it belongs to",
        id="csv-missing-customer-id",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c9,order,{TS},10,".encode()),
        "customer_id: no customer 'c9' in the store — import customers first",
        id="csv-unknown-customer",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,order,{TS},abc,".encode()),
        "value: expected a number, got 'abc'",
        id="csv-order-value-not-a-number",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,order,{TS},-5,".encode()),
        "value: expected a number of 0 or more, got -5",
        id="csv-negative-order-value",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,nps_response,{TS},,11".encode()),
        "score: expected a whole number from 0 to 10, got 11",
        id="csv-nps-score-11",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,nps_response,{TS},,".encode()),
        "score: missing — a nps_response event needs it",
        id="csv-nps-without-score",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,,{TS},,".encode()),
        "type: missing — every event needs a type",
        id="csv-missing-type",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,Order Placed,{TS},10,".encode()),
        "type: 'Order Placed' is not a valid event type — use lower-case letters, digits and _ "
        "(e.g. 'order_placed')",
        id="csv-bad-event-type",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,order,{TS},10,caf\xe9".encode("latin-1")),
        "not valid UTF-8 text — save the file as UTF-8",
        id="csv-bad-encoding",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,order,{TS},10,,extra".encode()),
        "expected 5 columns as in the header, found 6",
        id="csv-too-many-columns",
    ),
    pytest.param(
        "e.csv",
        csv_with(f"c1,order,{TS}".encode()),
        "expected 5 columns as in the header, found 3",
        id="csv-too-few-columns",
    ),
    pytest.param(
        "e.csv",
        csv_with(f'c1,"order"x,{TS},10,'.encode()),
        "not valid CSV:",
        id="csv-bad-quoting",
    ),
    pytest.param(
        "e.csv",
        b"customer_id,type,ts,gift wrap\n"
        + f"c1,order,{TS},\n".encode()
        + f"c1,order,{TS},yes\n".encode(),
        "property 'gift wrap' is not a usable name — use letters, digits and _ (e.g. 'gift_wrap')",
        id="csv-bad-property-name",
    ),
    # JSONL
    pytest.param(
        "e.jsonl",
        jsonl_with(event(ts="01/03/2025 10:00")),
        "ts: '01/03/2025 10:00' is not an ISO 8601 timestamp",
        id="jsonl-bad-timestamp",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(ts=1740819600)),
        "ts: expected an ISO 8601 timestamp text, got int 1740819600",
        id="jsonl-timestamp-as-number",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(ts="2025-03-01T10:00:00")),
        "ts: '2025-03-01T10:00:00' has no UTC offset",
        id="jsonl-naive-timestamp",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with({"type": "order", "ts": TS}),
        "customer_id: missing",
        id="jsonl-missing-customer-id",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(customer_id=None)),
        "customer_id: missing",
        id="jsonl-null-customer-id",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(customer_id="c9")),
        "customer_id: no customer 'c9' in the store — import customers first",
        id="jsonl-unknown-customer",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(value="abc")),
        "value: expected a number, got 'abc'",
        id="jsonl-order-value-not-a-number",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(value=True)),
        "value: expected a number, got bool True",
        id="jsonl-order-value-bool",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(type="nps_response", score=11)),
        "score: expected a whole number from 0 to 10, got 11",
        id="jsonl-nps-score-11",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(type="nps_response", properties={"score": 7.5})),
        "score: expected a whole number, got 7.5",
        id="jsonl-nps-score-fraction",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(
            b'{"customer_id": "c1", "type": "order", "ts": "' + TS.encode() + b'", '
            b'"note": "caf\xe9"}'
        ),
        "not valid UTF-8 text — save the file as UTF-8",
        id="jsonl-bad-encoding",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(b'{"customer_id": "c1", "type": "order",}'),
        "not valid JSON:",
        id="jsonl-invalid-json",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(b'["c1", "order", "' + TS.encode() + b'"]'),
        "expected a JSON object, got array",
        id="jsonl-array",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(b"null"),
        "expected a JSON object, got null",
        id="jsonl-null-line",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(b'"c1,order"'),
        "expected a JSON object, got string",
        id="jsonl-string-line",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(type="Order-Placed")),
        "type: 'Order-Placed' is not a valid event type — use lower-case letters, digits and _ "
        "(e.g. 'order_placed')",
        id="jsonl-bad-event-type",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(type=7)),
        "type: 7 is not a valid event type",
        id="jsonl-event-type-not-text",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(**{"gift wrap": True})),
        "property 'gift wrap' is not a usable name — use letters, digits and _ (e.g. 'gift_wrap')",
        id="jsonl-bad-property-name",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(properties={"2nd-item": "x"})),
        "property '2nd-item' is not a usable name — use letters, digits and _ (e.g. '_2nd_item')",
        id="jsonl-bad-nested-property-name",
    ),
    pytest.param(
        "e.jsonl",
        jsonl_with(event(properties=["value", 10])),
        "properties: expected a JSON object of event properties",
        id="jsonl-properties-not-an-object",
    ),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD_ROWS)
def test_a_bad_row_is_reported_at_its_line_and_nothing_is_stored(
    store: Store, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    add_customers(store, ["c1", "c2"])
    path = tmp_path / name
    path.write_bytes(content)
    before = snapshot(store)

    with pytest.raises(ImportFailed) as failed:
        run(store, path)

    [error] = failed.value.errors
    assert (error.source, error.line) == (str(path), 3)
    assert str(error).startswith(f"{path}:3: {reason}")
    assert f"\n  {path}:3: {reason}" in str(failed.value)
    assert failed.value.exit_code == 4
    assert snapshot(store) == before


# --- what is stored ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["events.csv", "events.jsonl", "events.csv.gz", "events.jsonl.gz"])
def test_events_are_stored_in_utc_with_checked_properties(
    store: Store, tmp_path: Path, name: str
) -> None:
    add_customers(store, ["c1", "c2"])
    order = {"value": "12.50", "currency": "eur", "items": "2", "coupon": "00123"}
    if "jsonl" in name:  # typed JSON, and properties may come nested
        order = {"properties": {"value": 12.5, "currency": "eur", "items": 2, "coupon": "00123"}}
    path = write_rows(
        tmp_path / name,
        [
            {"customer_id": "c1", "type": "order", "ts": "2025-03-01T10:00:00+01:00"}
            | order
            | {"event_id": "o-1"},
            {"customer_id": "c2", "type": "page_view", "ts": "2025-03-01T09:30:00Z"},
        ],
    )

    report = run(store, path)

    assert stored_events(store) == [
        {
            "event_id": "o-1",
            "customer_id": "c1",
            "type": "order",
            "ts": utc(2025, 3, 1, 9, 0),
            "value": 12.5,
            "properties": {"value": 12.5, "currency": "EUR", "items": 2, "coupon": "00123"},
        },
        {
            "event_id": None,
            "customer_id": "c2",
            "type": "page_view",
            "ts": utc(2025, 3, 1, 9, 30),
            "value": None,
            "properties": {},
        },
    ]
    assert property_types(store) == {
        ("order", "value"): "number",
        ("order", "currency"): "text",
        ("order", "items"): "number",
        ("order", "coupon"): "text",
    }
    assert (report.read, report.inserted, report.duplicates, report.rejected) == (2, 2, 0, 0)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: imported events — 2 rows read, 2 new in \d+\.\d s "
        r"\([\d,]+ rows/s\)",
        report.summary(),
    )


def test_csv_cells_become_typed_properties_but_codes_stay_text(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = write_rows(
        tmp_path / "views.csv",
        [
            {
                "customer_id": "c1",
                "type": "product_view",
                "ts": TS,
                "sku": "00123",
                "price": "19.90",
                "in_stock": "TRUE",
                "rating": "4",
                "launched": "2024-05-01",
                "big_code": "12345678901234567890",
                "huge": "1e400",
            }
        ],
    )

    run(store, path)

    [stored] = stored_events(store)
    assert stored["properties"] == {
        "sku": "00123",
        "price": 19.9,
        "in_stock": True,
        "rating": 4,
        "launched": "2024-05-01",
        "big_code": "12345678901234567890",
        "huge": "1e400",
    }
    types = property_types(store)
    assert set(types) == {("product_view", key) for key in stored["properties"]}
    assert {key: types[("product_view", key)] for key in ("sku", "price", "in_stock")} == {
        "sku": "text",
        "price": "number",
        "in_stock": "bool",
    }
    assert types[("product_view", "big_code")] == types[("product_view", "huge")] == "text"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_naive_timestamps_are_read_in_the_tz_zone_across_daylight_saving(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    add_customers(store, ["c1"])
    local_and_utc = [
        ("2025-01-15T12:00:00", utc(2025, 1, 15, 11, 0)),  # CET, +01:00
        ("2025-07-15T12:00:00", utc(2025, 7, 15, 10, 0)),  # CEST, +02:00
        ("2025-03-30T01:30:00", utc(2025, 3, 30, 0, 30)),  # before clocks go forward at 02:00
        ("2025-03-30T03:30:00", utc(2025, 3, 30, 1, 30)),  # after
        ("2025-10-26T01:30:00", utc(2025, 10, 25, 23, 30)),  # before clocks go back at 03:00
        ("2025-10-26T03:30:00", utc(2025, 10, 26, 2, 30)),  # after
        ("2025-07-15T12:00:00-04:00", utc(2025, 7, 15, 16, 0)),  # an explicit offset wins
        ("2025-07-15T12:00:00Z", utc(2025, 7, 15, 12, 0)),
    ]
    path = write_rows(
        tmp_path / f"events{suffix}",
        [
            {"customer_id": "c1", "type": "page_view", "ts": ts, "local": ts}
            for ts, _ in local_and_utc
        ],
    )

    run(store, path, tz="Europe/Madrid")

    assert {e["properties"]["local"]: e["ts"] for e in stored_events(store)} == dict(local_and_utc)


def test_without_tz_every_naive_timestamp_is_listed(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    path = write_rows(
        tmp_path / "events.csv",
        [
            {"customer_id": "c1", "type": "page_view", "ts": "2025-01-15T12:00:00"},
            {"customer_id": "c1", "type": "page_view", "ts": "2025-01-15T12:00:00+01:00"},
            {"customer_id": "c1", "type": "page_view", "ts": "2025-01-15"},
        ],
    )

    with pytest.raises(ImportFailed) as failed:
        run(store, path)

    assert [(e.line, e.reason.split(" has ")[0]) for e in failed.value.errors] == [
        (2, "ts: '2025-01-15T12:00:00'"),
        (4, "ts: '2025-01-15'"),
    ]
    assert "or pass --tz ZONE" in failed.value.errors[0].reason
    assert row_counts(store)["events"] == 0


@pytest.mark.parametrize("batch_size", [7, 50, 200, 500, 10_000])
def test_every_property_of_every_stored_event_is_catalogued(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    add_customers(store, ["c1"])
    path = write_rows(
        tmp_path / "events.jsonl",
        [event(type=f"kind_{n % 3}", **{f"p{n}": n, "shared": "x"}) for n in range(2_000)],
    )

    run(store, path, batch_size=batch_size)

    expected = {(f"kind_{n % 3}", f"p{n}"): "number" for n in range(2_000)}
    expected |= {(f"kind_{k}", "shared"): "text" for k in range(3)}
    assert property_types(store) == expected


# --- duplicates -------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 10_000], ids=["one-per-batch", "one-batch"])
def test_an_event_id_seen_twice_in_a_file_is_stored_once(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    add_customers(store, ["c1", "c2"])
    path = write_rows(
        tmp_path / "events.jsonl",
        [
            {"event_id": "e-1", "customer_id": "c1", "type": "order", "ts": TS, "value": 10},
            {"event_id": "e-2", "customer_id": "c2", "type": "order", "ts": TS, "value": 20},
            {"event_id": "e-1", "customer_id": "c1", "type": "order", "ts": TS, "value": 99},
        ],
    )

    report = run(store, path, batch_size=batch_size)

    assert [(e["event_id"], e["value"]) for e in stored_events(store)] == [
        ("e-1", 10.0),
        ("e-2", 20.0),
    ]
    assert (report.read, report.inserted, report.duplicates) == (3, 2, 1)
    assert "3 rows read, 2 new, 1 duplicate skipped in" in report.summary()


@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(1, id="one-per-batch"),
        pytest.param(10_000, id="one-batch"),
    ],
)
def test_of_two_events_with_one_id_the_first_in_the_file_is_kept(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    """The later copy is the re-sent one, whatever it sorts like and whatever the batch size."""
    add_customers(store, ["c1", "c2"])
    path = write_rows(
        tmp_path / "events.jsonl",
        [
            event(event_id="e-1", customer_id="c2", ts="2025-03-01T10:00:00Z", value=10),
            event(event_id="e-1", customer_id="c1", ts="2025-03-01T09:00:00Z", value=99),
        ],
    )

    report = run(store, path, batch_size=batch_size)

    assert [(e["customer_id"], e["value"]) for e in stored_events(store)] == [("c2", 10.0)]
    assert (report.inserted, report.duplicates) == (1, 1)


def test_importing_the_same_file_again_skips_every_event_with_an_id(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = write_rows(
        tmp_path / "events.csv",
        [
            {"event_id": f"e-{n}", "customer_id": "c1", "type": "page_view", "ts": TS}
            for n in range(5)
        ],
    )
    run(store, path)

    again = run(store, path)

    assert row_counts(store)["events"] == 5
    assert (again.read, again.inserted, again.duplicates) == (5, 0, 5)
    assert "5 rows read, 0 new, 5 duplicates skipped" in again.summary()


def test_events_without_an_event_id_are_never_deduplicated(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    same = {"customer_id": "c1", "type": "page_view", "ts": TS, "page": "/"}
    path = write_rows(tmp_path / "events.jsonl", [same, same])
    first = run(store, path)

    second = run(store, path)

    assert (first.inserted, first.duplicates, second.inserted, second.duplicates) == (2, 0, 2, 0)
    assert row_counts(store)["events"] == 4


# --- all or nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"ts": "not a time"}, id="refused-while-parsing"),
        pytest.param({"customer_id": "nobody"}, id="refused-while-writing"),
    ],
)
def test_one_bad_row_among_many_stores_nothing(
    store: Store, tmp_path: Path, bad: dict[str, str]
) -> None:
    add_customers(store, [f"c{n}" for n in range(10)])
    run(store, write_rows(tmp_path / "earlier.jsonl", [event(customer_id="c0", note="kept")]))
    rows = [
        {
            "event_id": f"e-{n}",
            "customer_id": f"c{n % 10}",
            "type": "order",
            "ts": TS,
            "value": n,
            "channel": "web",
        }
        for n in range(1000)
    ]
    rows[899] |= bad
    path = write_rows(tmp_path / "events.jsonl", rows)
    counts, before = row_counts(store), snapshot(store)

    with pytest.raises(ImportFailed) as failed:
        run(store, path, batch_size=100)  # eight batches were written before line 900

    assert [e.line for e in failed.value.errors] == [900]
    assert str(failed.value).startswith(f"{path}: nothing was imported — 1 bad row:\n")
    assert (
        row_counts(store)
        == counts
        == {
            "customers": 10,
            "attribute_keys": 0,
            "consents": 0,
            "events": 1,
            "event_properties": 1,
        }
    )
    assert snapshot(store) == before


def test_more_than_20_bad_rows_lists_20_and_says_it_stopped(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    rows = [event(ts=TS if n % 2 else f"day {n}") for n in range(100)]  # 50 bad rows
    path = write_rows(tmp_path / "events.csv", rows)

    with pytest.raises(ImportFailed) as failed:
        run(store, path)

    message = str(failed.value)
    listed = re.findall(rf"^  {re.escape(str(path))}:(\d+): ts: 'day \d+'", message, re.M)
    assert [int(line) for line in listed] == [2 + 2 * n for n in range(20)]
    assert "(stopped reading after 20 problems)" in message
    assert len(failed.value.errors) == 20
    assert failed.value.exit_code != 0
    assert row_counts(store)["events"] == 0


def test_the_failure_says_how_to_store_the_good_rows(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    path = write_rows(tmp_path / "events.jsonl", [event(), event(ts="soon")])

    with pytest.raises(ImportFailed) as failed:
        run(store, path)

    assert str(failed.value).endswith(
        "Fix these rows and import again, or pass --skip-invalid to store the good rows "
        f"and write the bad ones to {path}.rejects.jsonl."
    )
    assert "stopped reading" not in str(failed.value)


# --- --skip-invalid -------------------------------------------------------------------


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("batch_size", [1, 2, 10_000])
def test_skip_invalid_stores_the_good_rows_and_writes_each_reject_with_its_reason(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    add_customers(store, ["c1", "c2"])
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                orjson.dumps(event(event_id="a")),
                orjson.dumps(event(event_id="b", ts="tomorrow")),
                orjson.dumps(event(event_id="c", customer_id="c2")),
                orjson.dumps(event(event_id="d", customer_id="ghost")),
                b'{"customer_id": "c1", "type": ',
                orjson.dumps(event(event_id="a")),
                orjson.dumps(event(event_id="e", customer_id="c2", type="nps_response", score=9)),
            ]
        )
        + b"\n"
    )

    report = run(store, path, skip_invalid=True, batch_size=batch_size)

    assert sorted((e["event_id"], e["customer_id"]) for e in stored_events(store)) == [
        ("a", "c1"),
        ("c", "c2"),
        ("e", "c2"),
    ]
    rejects = tmp_path / "events.jsonl.rejects.jsonl"
    assert report.rejects_path == rejects
    # The file lists rejects as they are found, so sort by line to compare.
    assert sorted(read_rejects(rejects), key=lambda r: r["line"]) == [
        {
            "line": 2,
            "reason": "ts: 'tomorrow' is not an ISO 8601 timestamp "
            "(e.g. 2025-03-01T18:30:00+01:00)",
            "record": event(event_id="b", ts="tomorrow"),
            "text": None,
        },
        {
            "line": 4,
            "reason": "customer_id: no customer 'ghost' in the store — import customers first",
            "record": event(event_id="d", customer_id="ghost"),
            "text": None,
        },
        {
            "line": 5,
            "reason": "not valid JSON: unexpected end of data (column 1)",
            "record": None,
            "text": '{"customer_id": "c1", "type":',
        },
    ]
    assert (report.read, report.inserted, report.duplicates, report.rejected) == (7, 3, 1, 3)
    assert f"3 rejected (see {rejects})" in report.summary()


def test_skip_invalid_reports_unreadable_csv_rows_with_their_text(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"customer_id,type,ts\n"
        + f"c1,order,{TS}\n".encode()
        + f"c1,order,{TS},surplus\n".encode()
        + f"c1,caf\xe9,{TS}\n".encode("latin-1")
        + f"c1,page_view,{TS}\n".encode()
    )

    report = run(store, path, skip_invalid=True)

    assert [e["type"] for e in stored_events(store)] == ["order", "page_view"]
    assert [
        (r["line"], r["reason"], r["text"])
        for r in read_rejects(tmp_path / "events.csv.rejects.jsonl")
    ] == [
        (3, "expected 3 columns as in the header, found 4", f"c1,order,{TS},surplus"),
        (4, "not valid UTF-8 text — save the file as UTF-8", f"c1,caf\ufffd,{TS}"),
    ]
    assert report.rejected == 2


def test_a_stale_rejects_file_is_removed_when_a_rerun_is_clean(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = write_rows(tmp_path / "events.jsonl", [event(), event(customer_id="c2")])
    run(store, path, skip_invalid=True)
    rejects = tmp_path / "events.jsonl.rejects.jsonl"
    assert [r["line"] for r in read_rejects(rejects)] == [2]

    add_customers(store, ["c2"])
    report = run(store, path, skip_invalid=True)

    assert not rejects.exists()
    assert report.rejected == 0
    assert "rejected" not in report.summary()


def test_rejects_go_to_the_path_asked_for(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    path = write_rows(tmp_path / "events.jsonl", [event(), event(type="Bad Type")])
    elsewhere = tmp_path / "review" / "bad-events.jsonl"
    elsewhere.parent.mkdir()

    report = run(store, path, skip_invalid=True, rejects_path=elsewhere)

    assert [r["line"] for r in read_rejects(elsewhere)] == [2]
    assert not (tmp_path / "events.jsonl.rejects.jsonl").exists()
    assert f"1 rejected (see {elsewhere})" in report.summary()
    assert row_counts(store)["events"] == 1


def test_an_unwritable_rejects_location_stores_nothing(store: Store, tmp_path: Path) -> None:
    """The rejects file is opened at the first bad row; failing then must roll everything back."""
    add_customers(store, ["c1"])
    path = write_rows(tmp_path / "events.jsonl", [event(), event(type="Bad Type")])
    # /proc refuses new files even to root, so open() fails at the first bad row.
    unwritable = Path("/proc/narrowcast-rejects.jsonl")

    with pytest.raises(ImportFailed, match=r"cannot write rejected rows there.*--rejects"):
        run(store, path, skip_invalid=True, rejects_path=unwritable)

    assert row_counts(store)["events"] == 0


def test_a_folder_as_rejects_location_is_refused_up_front(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    path = write_rows(tmp_path / "events.jsonl", [event(), event(type="Bad Type")])

    with pytest.raises(ImportFailed, match="is a folder"):
        run(store, path, skip_invalid=True, rejects_path=tmp_path)

    assert row_counts(store)["events"] == 0


# --- streaming ------------------------------------------------------------------------


def test_memory_does_not_grow_with_the_file(sqlite_store: Store, tmp_path: Path) -> None:
    """Peak Python memory for a 10x larger file stays about the same: rows are streamed."""
    add_customers(sqlite_store, [f"c{n}" for n in range(50)])

    def peak_for(rows: int) -> int:
        path = write_rows(
            tmp_path / f"events-{rows}.jsonl",
            [
                event(customer_id=f"c{n % 50}", event_id=f"{rows}-{n}", page=f"/p/{n}")
                for n in range(rows)
            ],
        )
        tracemalloc.start()
        try:
            report = run(sqlite_store, path, batch_size=500)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.inserted == rows
        return peak

    small, large = peak_for(2_000), peak_for(20_000)

    assert large < small * 1.5 + 1_000_000, (small, large)
