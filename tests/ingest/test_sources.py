"""Reading files: formats, headers, BOMs, blank lines, quoted newlines, gzip, line numbers.

The first tests need no database; the rest import through ``import_events`` so the
line numbers are checked where the user sees them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from narrowcast.ingest import (
    ImportFailed,
    ImportOptions,
    ImportReport,
    SourceError,
    import_events,
    open_source,
)
from narrowcast.ingest.sources import read_rows
from narrowcast.store import Store
from tests.ingest.store_contents import add_customers, row_counts, stored_events

TS = "2025-03-01T10:00:00Z"


# --- choosing the format ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("events.csv", "csv"),
        ("EVENTS.CSV", "csv"),
        ("events.jsonl", "jsonl"),
        ("events.ndjson", "jsonl"),
        ("events.csv.gz", "csv"),
        ("export.2025-03.jsonl.gz", "jsonl"),
    ],
)
def test_the_format_comes_from_the_file_name(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")

    assert open_source(path).format == expected


def test_a_name_without_a_known_suffix_needs_format(tmp_path: Path) -> None:
    path = tmp_path / "events.txt"
    path.write_bytes(b"")

    with pytest.raises(SourceError, match=r"cannot tell the format .* --format csv\|jsonl"):
        open_source(path)
    assert open_source(path, "jsonl").format == "jsonl"


def test_format_overrides_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"")

    assert open_source(path, "jsonl").format == "jsonl"


def test_stdin_needs_format() -> None:
    with pytest.raises(SourceError, match=r"stdin \(-\) needs --format csv or --format jsonl"):
        open_source("-")
    source = open_source("-", "csv")
    assert (source.path, source.name, source.format) == (None, "<stdin>", "csv")


def test_a_missing_file_and_an_unknown_format_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="unknown format 'xml': use csv or jsonl"):
        open_source("-", "xml")


@pytest.mark.parametrize("name", ["events.csv", "events.jsonl"])
def test_progress_is_reported_in_bytes_adding_up_to_the_file_size(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    line = "c1,order,x\n" if name.endswith(".csv") else '{"customer_id": "c1"}\n'
    path.write_text("customer_id,type,ts\n" * name.endswith(".csv") + line * 200_000)
    counted: list[int] = []

    rows = sum(1 for _ in read_rows(open_source(path), counted.append))

    assert rows == 200_000
    assert sum(counted) == open_source(path).size == path.stat().st_size
    assert len(counted) > 1  # several updates, not one at the end


def test_a_gzip_file_has_no_known_size_for_progress(tmp_path: Path) -> None:
    """The bar counts decompressed bytes; the compressed size would be the wrong total."""
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"customer_id": "c1"}\n' * 1000))
    counted: list[int] = []

    list(read_rows(open_source(path), counted.append))

    assert open_source(path).size is None
    assert sum(counted) == 22 * 1000


# --- through the importer -------------------------------------------------------------------


def run(store: Store, path: Path, **options: Any) -> ImportReport:
    return import_events(store, open_source(path), ImportOptions(**options))


def failure_lines(store: Store, path: Path) -> list[str]:
    with pytest.raises(ImportFailed) as failed:
        run(store, path)
    return [str(error) for error in failed.value.errors]


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl", "empty.csv.gz"])
def test_an_empty_file_imports_nothing_and_says_so(store: Store, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")

    report = run(store, path)

    assert (report.read, report.stored, report.rejected) == (0, 0, 0)
    assert "0 rows read, 0 new" in report.summary()
    assert row_counts(store)["events"] == 0


@pytest.mark.parametrize("content", [b"customer_id,type,ts\n", b"customer_id,type,ts"])
def test_a_header_only_csv_imports_nothing(store: Store, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(content)

    report = run(store, path)

    assert (report.read, report.stored) == (0, 0)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"customer_id,type,ts,ts\n", ":1: column 'ts' appears twice in the header"),
        (b"customer_id, type ,ts,type\n", ":1: column 'type' appears twice in the header"),
        (b"customer_id,,ts\n", ":1: column 2 of the header has no name"),
        (b"customer_id,type,ts,caf\xe9\n", ":1: the header is not valid UTF-8"),
        (b'customer_id,"type,ts\n', ":1: the header is not valid CSV"),
    ],
)
def test_a_bad_header_refuses_the_whole_file(
    store: Store, tmp_path: Path, header: bytes, message: str
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    path.write_bytes(header + f"c1,order,{TS},x\n".encode())

    with pytest.raises(SourceError) as failed:
        run(store, path)

    assert str(failed.value).startswith(f"{path}{message}")
    assert failed.value.exit_code == 4
    assert row_counts(store)["events"] == 0


def test_header_names_are_trimmed(store: Store, tmp_path: Path) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    path.write_bytes(f" customer_id , type ,ts \nc1,order,{TS}\n".encode())

    run(store, path)

    assert [(e["customer_id"], e["type"]) for e in stored_events(store)] == [("c1", "order")]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("events.csv", f"customer_id,type,ts\r\nc1,order,{TS}\r\n".encode()),
        ("events.jsonl", f'{{"customer_id": "c1", "type": "order", "ts": "{TS}"}}\n'.encode()),
    ],
)
def test_a_byte_order_mark_is_not_part_of_the_first_name(
    store: Store, tmp_path: Path, name: str, content: bytes
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content)

    run(store, path)

    [stored] = stored_events(store)
    assert (stored["customer_id"], stored["properties"]) == ("c1", {})


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        (
            "events.csv",
            b"customer_id,type,ts\n\n"
            + f"c1,order,{TS}\n".encode()
            + b"   \n\r\n"
            + f"c1,order,{TS}\n".encode()
            + b"\n"
            + b"c1,order,later\n\n",
            8,
        ),
        (
            "events.jsonl",
            b"\n"
            + f'{{"customer_id": "c1", "type": "order", "ts": "{TS}"}}\n'.encode()
            + b"  \t \n\r\n\n"
            + f'{{"customer_id": "c1", "type": "order", "ts": "{TS}"}}\r\n'.encode()
            + b'{"customer_id": "c1", "type": "order", "ts": "later"}\n\n',
            7,
        ),
    ],
)
def test_blank_lines_are_skipped_but_still_counted(
    store: Store, tmp_path: Path, name: str, content: bytes, line: int
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / name
    path.write_bytes(content)

    assert [line.split(": ts:")[0] for line in failure_lines(store, path)] == [f"{path}:{line}"]

    (tmp_path / name).write_bytes(content.replace(b"later", TS.encode()))
    report = run(store, path)
    assert (report.read, report.inserted) == (3, 3)


def test_a_quoted_field_may_span_lines_and_later_line_numbers_stay_right(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    content = (
        "customer_id,type,ts,note\n"  # 1
        f'c1,page_view,{TS},"first line\n'  # 2
        "second line, with a comma\n"  # 3
        'and a ""quote"""\n'  # 4
        f"c1,page_view,{TS},plain\n"  # 5
        f'c1,page_view,{TS},"windows\r\nline"\r\n'  # 6-7
        "c1,page_view,whenever,oops\n"  # 8
    )
    path.write_bytes(content.encode())

    assert [line.split(": ts:")[0] for line in failure_lines(store, path)] == [f"{path}:8"]

    path.write_bytes(content.replace("whenever", TS).encode())
    run(store, path)
    assert [e["properties"]["note"] for e in stored_events(store)] == [
        'first line\nsecond line, with a comma\nand a "quote"',
        "plain",
        "windows\r\nline",
        "oops",
    ]


def test_an_unclosed_quote_is_reported_on_the_line_where_it_opens(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    path.write_bytes(
        (
            "customer_id,type,ts,note\n"
            f"c1,page_view,{TS},fine\n"
            f'c1,page_view,{TS},"never closed\n'
            f"c1,page_view,{TS},swallowed\n"
            f"c1,page_view,{TS},swallowed too\n"
        ).encode()
    )

    assert failure_lines(store, path) == [f"{path}:3: not valid CSV: unexpected end of data"]


def test_a_bad_encoding_inside_a_multi_line_field_names_the_row_start(
    store: Store, tmp_path: Path
) -> None:
    add_customers(store, ["c1"])
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"customer_id,type,ts,note\n"
        + f'c1,page_view,{TS},"caf'.encode()
        + b'\xe9\ncr\xe8me"\n'
        + f"c1,page_view,{TS},ok\n".encode()
    )

    assert failure_lines(store, path) == [
        f"{path}:2: not valid UTF-8 text — save the file as UTF-8"
    ]


@pytest.mark.parametrize("name", ["events.csv.gz", "events.jsonl.gz"])
def test_gzip_files_report_lines_of_the_decompressed_text(
    store: Store, tmp_path: Path, name: str
) -> None:
    add_customers(store, ["c1"])
    if ".csv" in name:
        text = "customer_id,type,ts\n" + f"c1,order,{TS}\n" * 3 + "c1,order,bad\n"
        bad_line = 5
    else:
        good = f'{{"customer_id": "c1", "type": "order", "ts": "{TS}"}}\n'
        text = good * 3 + '{"customer_id": "c1", "type": "order", "ts": "bad"}\n'
        bad_line = 4
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))

    assert [line.split(": ts:")[0] for line in failure_lines(store, path)] == [f"{path}:{bad_line}"]

    path.write_bytes(gzip.compress(text.replace("bad", TS).encode()))
    assert run(store, path).inserted == 4


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[20:], id="not-gzip"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    ],
)
def test_a_damaged_gzip_file_is_refused_without_storing_anything(
    store: Store, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    add_customers(store, ["c1"])
    good = f'{{"customer_id": "c1", "type": "order", "ts": "{TS}"}}\n'.encode()
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(damage(gzip.compress(good * 5000, mtime=0)))

    with pytest.raises(SourceError) as failed:
        run(store, path)

    assert str(failed.value).startswith(f"{path}: cannot decompress this gzip file")
    assert row_counts(store)["events"] == 0
