"""``import_customers``: upsert by id, attributes, consent, and refusals, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from narrowcast.ingest import (
    ImportFailed,
    ImportOptions,
    ImportReport,
    import_customers,
    import_events,
    open_source,
)
from narrowcast.ingest.coerce import zone
from narrowcast.store import Store
from tests.ingest.exports import write_rows
from tests.ingest.store_contents import (
    attribute_types,
    row_counts,
    snapshot,
    stored_consents,
    stored_customer,
)


def run(store: Store, path: Path, *, tz: str | None = None, **options: Any) -> ImportReport:
    return import_customers(
        store, open_source(path), ImportOptions(**options), default_tz=zone(tz) if tz else None
    )


# --- bad rows: each on line 3, between good ones --------------------------------------

CSV_COLUMNS = ("id", "email", "country", "email_consent", "customer_type", "created_at", "tier")


def csv_with(bad: dict[str, str] | bytes) -> bytes:
    def line(row: dict[str, str]) -> bytes:
        return (",".join(row.get(c, "") for c in CSV_COLUMNS) + "\n").encode()

    bad_line = bad + b"\n" if isinstance(bad, bytes) else line(bad)
    return (
        ",".join(CSV_COLUMNS).encode()
        + b"\n"
        + line({"id": "c1", "email": "ana@example.com", "country": "ES", "tier": "gold"})
        + bad_line
        + line({"id": "c3", "email_consent": "yes"})
    )


def jsonl_with(bad: dict[str, Any] | bytes) -> bytes:
    bad_line = bad if isinstance(bad, bytes) else orjson.dumps(bad)
    return (
        b'{"id": "c1", "email": "ana@example.com", "tier": "gold"}\n'
        b'{"id": "c2", "push_consent": true}\n'
        + bad_line
        + b"\n"
        + b'{"id": "c4", "country": "PL"}\n'
    )


BAD_ROWS = [
    pytest.param(
        "c.csv",
        csv_with({"email": "nobody@example.com"}),
        "id: missing — every customer needs the shop's customer id",
        id="csv-missing-id",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "email": "not-an-email"}),
        "email: 'not-an-email' is not an email address",
        id="csv-bad-email",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "country": "Spain"}),
        "country: longer than 2 characters",
        id="csv-country-name",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "country": "e1"}),
        "country: expected a two-letter ISO country code like ES, got 'e1'",
        id="csv-bad-country",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "email_consent": "maybe"}),
        "email_consent: expected true or false (or yes/no, 1/0), got 'maybe'",
        id="csv-bad-consent",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "customer_type": "alien"}),
        "customer_type: expected one of individual, corporate, government, got 'alien'",
        id="csv-bad-customer-type",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "created_at": "last year"}),
        "created_at: 'last year' is not an ISO 8601 timestamp",
        id="csv-bad-timestamp",
    ),
    pytest.param(
        "c.csv",
        csv_with({"id": "c2", "created_at": "2024-02-01T09:00:00"}),
        "created_at: '2024-02-01T09:00:00' has no UTC offset",
        id="csv-naive-timestamp",
    ),
    pytest.param(
        "c.csv",
        csv_with("c2,caf\xe9@example.com,,,,,".encode("latin-1")),
        "not valid UTF-8 text — save the file as UTF-8",
        id="csv-bad-encoding",
    ),
    pytest.param(
        "c.csv",
        csv_with(b"c2,b@example.com,ES"),
        "expected 7 columns as in the header, found 3",
        id="csv-wrong-column-count",
    ),
    pytest.param(
        "c.csv",
        b"id,shoe size\nc1,\nc2,42\n",
        "column 'shoe size' is not a usable name — use letters, digits and _ (e.g. 'shoe_size')",
        id="csv-bad-attribute-name",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"email": "x@example.com"}),
        "id: missing — every customer needs the shop's customer id",
        id="jsonl-missing-id",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "   "}),
        "id: missing — every customer needs the shop's customer id",
        id="jsonl-blank-id",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "x" * 129}),
        "id: longer than 128 characters",
        id="jsonl-id-too-long",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": ["c3"]}),
        "id: expected text, got list ['c3']",
        id="jsonl-id-not-text",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "timezone": "Mars/Olympus_Mons"}),
        "timezone: 'Mars/Olympus_Mons' is not an IANA time zone (e.g. Europe/Madrid)",
        id="jsonl-bad-timezone",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "locale": "castellano"}),
        "locale: expected a locale like es, es-ES or pl-PL, got 'castellano'",
        id="jsonl-bad-locale",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "phone": "call me"}),
        "phone: 'call me' is not a phone number (e.g. +34 600 123 456)",
        id="jsonl-bad-phone",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "birth_date": "1990-02-30"}),
        "birth_date: '1990-02-30' is not a real date",
        id="jsonl-impossible-birth-date",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "birth_date": "17/05/1990"}),
        "birth_date: expected a date as YYYY-MM-DD, got '17/05/1990'",
        id="jsonl-birth-date-format",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "push_consent": "sometimes"}),
        "push_consent: expected true or false (or yes/no, 1/0), got 'sometimes'",
        id="jsonl-bad-consent",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "customer_type": "alien"}),
        "customer_type: expected one of individual, corporate, government, got 'alien'",
        id="jsonl-bad-customer-type",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "created_at": "2024-02-01T09:00:00"}),
        "created_at: '2024-02-01T09:00:00' has no UTC offset",
        id="jsonl-naive-timestamp",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "created_at": "2024-13-01T09:00:00Z"}),
        "created_at: '2024-13-01T09:00:00Z' is not an ISO 8601 timestamp",
        id="jsonl-bad-timestamp",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with({"id": "c3", "Loyalty Tier": "gold"}),
        "column 'Loyalty Tier' is not a usable name — use letters, digits and _ "
        "(e.g. 'loyalty_tier')",
        id="jsonl-bad-attribute-name",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with(b'{"id": "c3", "city": "M\xe1laga"}'),
        "not valid UTF-8 text — save the file as UTF-8",
        id="jsonl-bad-encoding",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with(b"{'id': 'c3'}"),
        "not valid JSON:",
        id="jsonl-invalid-json",
    ),
    pytest.param(
        "c.jsonl",
        jsonl_with(b'[{"id": "c3"}]'),
        "expected a JSON object, got array",
        id="jsonl-array",
    ),
]


@pytest.mark.parametrize(("name", "content", "reason"), BAD_ROWS)
def test_a_bad_row_is_reported_at_its_line_and_nothing_is_stored(
    store: Store, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ImportFailed) as failed:
        run(store, path)

    [error] = failed.value.errors
    assert str(error).startswith(f"{path}:3: {reason}")
    assert f"\n  {path}:3: {reason}" in str(failed.value)
    assert row_counts(store) == dict.fromkeys(row_counts(store), 0)


# --- what is stored ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["customers.csv", "customers.jsonl"])
def test_known_columns_are_checked_and_normalised(store: Store, tmp_path: Path, name: str) -> None:
    path = write_rows(
        tmp_path / name,
        [
            {
                "id": "007",
                "email": "ana@example.com",
                "phone": "+34 600 123 456",
                "first_name": "Ana",
                "last_name": "García",
                "birth_date": "1990-05-17",
                "gender": "female",
                "country": "es",
                "region": "Andalucía",
                "city": "Málaga",
                "neighborhood": "Soho",
                "timezone": "Europe/Madrid",
                "locale": "es_es",
                "customer_type": "Corporate",
                "created_at": "2024-01-02T03:04:05+01:00",
            },
            {"id": "c2", "locale": "PL", "customer_type": "government"},
        ],
    )
    started = datetime.now(UTC)

    report = run(store, path)

    ana = stored_customer(store, "007")
    assert {k: v for k, v in ana.items() if k != "updated_at"} == {
        "id": "007",
        "email": "ana@example.com",
        "phone": "+34 600 123 456",
        "first_name": "Ana",
        "last_name": "García",
        "birth_date": date(1990, 5, 17),
        "gender": "female",
        "country": "ES",
        "region": "Andalucía",
        "city": "Málaga",
        "neighborhood": "Soho",
        "timezone": "Europe/Madrid",
        "locale": "es-ES",
        "customer_type": "corporate",
        "created_at": datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC),
        "attributes": {},
    }
    other = stored_customer(store, "c2")
    assert (other["locale"], other["customer_type"], other["email"]) == ("pl", "government", None)
    assert other["created_at"] >= started.replace(microsecond=0)
    assert (report.read, report.inserted, report.updated) == (2, 2, 0)
    assert "2 rows read, 2 new, 0 updated in" in report.summary()


def test_naive_created_at_is_read_in_the_tz_zone(store: Store, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "customers.csv",
        [{"id": "c1", "created_at": "2024-07-01T09:00:00"}],
    )

    run(store, path, tz="Europe/Madrid")

    assert stored_customer(store, "c1")["created_at"] == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)


def test_a_second_import_updates_by_id_and_an_empty_cell_keeps_the_stored_value(
    store: Store, tmp_path: Path
) -> None:
    first = write_rows(
        tmp_path / "first.csv",
        [
            {"id": "c1", "email": "old@example.com", "city": "Madrid", "tier": "gold"},
            {"id": "c2", "email": "two@example.com", "city": "Vigo", "tier": "silver"},
        ],
    )
    run(store, first)
    created = stored_customer(store, "c1")["created_at"]
    second = write_rows(
        tmp_path / "second.csv",
        [
            {"id": "c1", "email": "new@example.com", "city": "", "tier": ""},
            {"id": "c3", "email": "three@example.com", "city": "Cádiz", "tier": "bronze"},
        ],
    )

    report = run(store, second)

    c1 = stored_customer(store, "c1")
    assert (c1["email"], c1["city"], c1["attributes"]) == (
        "new@example.com",
        "Madrid",
        {"tier": "gold"},
    )
    assert c1["created_at"] == created
    assert c1["updated_at"] >= created
    assert stored_customer(store, "c2")["email"] == "two@example.com"
    assert stored_customer(store, "c3")["city"] == "Cádiz"
    assert (report.read, report.inserted, report.updated) == (2, 1, 1)
    assert "2 rows read, 1 new, 1 updated in" in report.summary()
    assert row_counts(store)["customers"] == 3


def test_jsonl_null_clears_a_column_and_removes_an_attribute_absent_keys_stay(
    store: Store, tmp_path: Path
) -> None:
    run(
        store,
        write_rows(
            tmp_path / "first.jsonl",
            [
                {
                    "id": "c1",
                    "email": "ana@example.com",
                    "phone": "+34 600 123 456",
                    "city": "Madrid",
                    "tier": "gold",
                    "points": 10,
                }
            ],
        ),
    )

    run(
        store,
        write_rows(
            tmp_path / "second.jsonl",
            [{"id": "c1", "phone": None, "tier": None, "points": 20, "vip": True}],
        ),
    )

    c1 = stored_customer(store, "c1")
    assert (c1["email"], c1["phone"], c1["city"]) == ("ana@example.com", None, "Madrid")
    assert c1["attributes"] == {"points": 20, "vip": True}


def test_rows_for_the_same_id_in_one_file_are_merged_in_order(store: Store, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "customers.jsonl",
        [
            {"id": "c1", "email": "a@example.com", "tier": "gold"},
            {"id": "c1", "email": "b@example.com", "points": 5},
            {"id": "c1", "city": "Lugo", "tier": None},
        ],
    )

    report = run(store, path, batch_size=2)  # the same customer in two batches

    c1 = stored_customer(store, "c1")
    assert (c1["email"], c1["city"], c1["attributes"]) == ("b@example.com", "Lugo", {"points": 5})
    assert row_counts(store)["customers"] == 1
    assert report.read == 3


def test_attribute_types_are_inferred_from_csv_text(store: Store, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "customers.csv",
        [
            {
                "id": "c1",
                "score": "12.5",
                "visits": "3",
                "member_code": "00123",
                "newsletter": "true",
                "card_number": "12345678901234567890",
                "signup_day": "2024-05-01",
                "favourite": "tea",
                "huge": "1e400",
            }
        ],
    )

    run(store, path)

    assert stored_customer(store, "c1")["attributes"] == {
        "score": 12.5,
        "visits": 3,
        "member_code": "00123",
        "newsletter": True,
        "card_number": "12345678901234567890",
        "signup_day": "2024-05-01",
        "favourite": "tea",
        "huge": "1e400",
    }
    assert attribute_types(store) == {
        "score": "number",
        "visits": "number",
        "member_code": "text",
        "newsletter": "bool",
        "card_number": "text",
        "signup_day": "date",
        "favourite": "text",
        "huge": "text",
    }


def test_jsonl_attributes_keep_their_json_types(store: Store, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "customers.jsonl",
        [{"id": "c1", "score": 12.5, "member_code": "00123", "newsletter": True, "pets": ["cat"]}],
    )

    run(store, path)

    assert stored_customer(store, "c1")["attributes"] == {
        "score": 12.5,
        "member_code": "00123",
        "newsletter": True,
        "pets": ["cat"],
    }
    assert attribute_types(store) == {
        "score": "number",
        "member_code": "text",
        "newsletter": "bool",
        "pets": "list",
    }


# --- consent ------------------------------------------------------------------------------


def test_consent_columns_set_marketing_consent_with_the_file_as_source(
    store: Store, tmp_path: Path
) -> None:
    answers = ["yes", "no", "1", "0", "true", "false", "YES", "N"]
    path = write_rows(
        tmp_path / "customers.csv",
        [
            {"id": f"c{n}", "email_consent": answer, "push_consent": "yes" if n == 0 else ""}
            for n, answer in enumerate(answers)
        ]
        + [{"id": "silent", "email_consent": "", "push_consent": ""}],
    )

    run(store, path)

    source = "import:customers.csv"
    assert stored_consents(store) == {
        ("c0", "email"): (True, source),
        ("c0", "push"): (True, source),
        ("c1", "email"): (False, source),
        ("c2", "email"): (True, source),
        ("c3", "email"): (False, source),
        ("c4", "email"): (True, source),
        ("c5", "email"): (False, source),
        ("c6", "email"): (True, source),
        ("c7", "email"): (False, source),
    }


def test_jsonl_consent_accepts_booleans_and_words(store: Store, tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "customers.jsonl",
        [
            {"id": "c1", "email_consent": True, "push_consent": False, "sms_consent": "yes"},
            {"id": "c2", "email_consent": 0, "push_consent": None},
        ],
    )

    run(store, path)

    assert {key: granted for key, (granted, _) in stored_consents(store).items()} == {
        ("c1", "email"): True,
        ("c1", "push"): False,
        ("c1", "sms"): True,
        ("c2", "email"): False,
    }


def test_reimporting_the_same_consent_keeps_its_time_and_a_change_replaces_it(
    store: Store, tmp_path: Path
) -> None:
    def consent_rows() -> dict[str, tuple[bool, str]]:
        with store.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT channel, granted, updated_at FROM consents ORDER BY channel"
            ).all()
        return {channel: (bool(granted), str(at)) for channel, granted, at in rows}

    first = write_rows(
        tmp_path / "customers.csv", [{"id": "c1", "email_consent": "yes", "push_consent": "yes"}]
    )
    run(store, first)
    before = consent_rows()

    second = write_rows(
        tmp_path / "again.csv", [{"id": "c1", "email_consent": "yes", "push_consent": "no"}]
    )
    run(store, second)

    after = consent_rows()
    assert after["email"] == before["email"]
    assert after["push"][0] is False
    assert after["push"][1] != before["push"][1]
    assert stored_consents(store)[("c1", "email")] == (True, "import:customers.csv")
    assert stored_consents(store)[("c1", "push")] == (False, "import:again.csv")


# --- all or nothing, --skip-invalid ----------------------------------------------------------


def test_one_bad_customer_among_many_changes_nothing(store: Store, tmp_path: Path) -> None:
    run(
        store,
        write_rows(
            tmp_path / "earlier.csv",
            [{"id": f"c{n}", "city": "Madrid", "email_consent": "no"} for n in range(50)],
        ),
    )
    earlier_events = write_rows(
        tmp_path / "events.jsonl",
        [{"customer_id": "c1", "type": "order", "ts": "2025-01-01T00:00:00Z", "value": 5}],
    )
    import_events(store, open_source(earlier_events))
    rows: list[dict[str, Any]] = [
        {"id": f"c{n}", "city": "Sevilla", "email_consent": "yes", f"extra_{n % 7}": "1"}
        for n in range(800)
    ]
    rows[700]["email_consent"] = "perhaps"
    path = write_rows(tmp_path / "customers.csv", rows)
    counts, before = row_counts(store), snapshot(store)

    with pytest.raises(ImportFailed) as failed:
        run(store, path, batch_size=64)  # ten batches were written before line 702

    assert [str(e) for e in failed.value.errors] == [
        f"{path}:702: email_consent: expected true or false (or yes/no, 1/0), got 'perhaps'"
    ]
    assert (
        row_counts(store)
        == counts
        == {
            "customers": 50,
            "attribute_keys": 0,
            "consents": 50,
            "events": 1,
            "event_properties": 1,
        }
    )
    assert snapshot(store) == before


def test_skip_invalid_stores_the_good_customers_and_writes_the_rejects(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_bytes(
        jsonl_with({"id": "c3", "country": "Spain"}) + b"not json\n" + b'{"id": "c5"}\n'
    )

    report = run(store, path, skip_invalid=True)

    rejects = tmp_path / "customers.jsonl.rejects.jsonl"
    entries = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(e["line"], e["reason"], e["record"], e["text"]) for e in entries] == [
        (3, "country: longer than 2 characters", {"id": "c3", "country": "Spain"}, None),
        (5, entries[1]["reason"], None, "not json"),
    ]
    assert entries[1]["reason"].startswith("not valid JSON:")
    assert row_counts(store)["customers"] == 4
    assert (report.read, report.inserted, report.rejected) == (6, 4, 2)
    assert f"2 rejected (see {rejects})" in report.summary()
