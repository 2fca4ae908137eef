"""``narrowcast import``: exit codes, the one-line summary, errors without tracebacks."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from narrowcast.cli import cli
from narrowcast.store import Store
from tests.ingest.exports import write_rows
from tests.ingest.store_contents import row_counts, stored_customer, stored_events

Invoke = Callable[..., Result]
TS = "2025-03-01T10:00:00Z"
SUMMARY = r"imported {kind} — {counts} in \d+\.\d s \([\d,]+ rows/s\)"
NARROWCAST = Path(sys.executable).with_name("narrowcast")


def write_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(f'[database]\nurl = "{url}"\n{extra}')
    return path


@pytest.fixture
def narrowcast(store: Store, tmp_path: Path) -> Invoke:
    """``narrowcast --config … ARGS`` on the test's store, after ``db upgrade``."""
    config = write_config(tmp_path / "config.toml", store.url.render_as_string(False))
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None) -> Result:
        return runner.invoke(cli, ["--config", str(config), *args], input=input)

    upgraded = invoke("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    return invoke


def assert_no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def customers_file(tmp_path: Path) -> Path:
    return write_rows(
        tmp_path / "customers.csv",
        [
            {"id": "c1", "email": "ana@example.com", "email_consent": "yes"},
            {"id": "c2", "email": "bo@example.com", "email_consent": "no"},
        ],
    )


def test_imports_print_one_summary_line_and_exit_0(
    narrowcast: Invoke, store: Store, tmp_path: Path
) -> None:
    customers = customers_file(tmp_path)
    events = write_rows(
        tmp_path / "events.jsonl",
        [
            {"customer_id": "c1", "type": "order", "ts": TS, "value": 20, "event_id": "o1"},
            {"customer_id": "c2", "type": "page_view", "ts": TS},
            {"customer_id": "c1", "type": "order", "ts": TS, "value": 20, "event_id": "o1"},
        ],
    )

    first = narrowcast("import", "customers", str(customers))
    second = narrowcast("import", "events", str(events))

    assert (first.exit_code, second.exit_code) == (0, 0)
    assert re.fullmatch(
        re.escape(str(customers))
        + ": "
        + SUMMARY.format(kind="customers", counts="2 rows read, 2 new, 0 updated")
        + "\n",
        first.stdout,
    )
    assert re.fullmatch(
        re.escape(str(events))
        + ": "
        + SUMMARY.format(kind="events", counts="3 rows read, 2 new, 1 duplicate skipped")
        + "\n",
        second.stdout,
    )
    assert first.stderr == second.stderr == ""  # no progress bar when stderr is not a terminal
    assert row_counts(store) == {
        "customers": 2,
        "attribute_keys": 0,
        "consents": 2,
        "events": 2,
        "event_properties": 1,
    }


def test_a_bad_file_exits_4_with_file_and_line_and_stores_nothing(
    narrowcast: Invoke, store: Store, tmp_path: Path
) -> None:
    narrowcast("import", "customers", str(customers_file(tmp_path)))
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_id,type,ts,value\n"
        f"c1,order,{TS},10\n"
        f"c1,order,{TS},ten\n"
        f"c9,order,{TS},10\n"
        "c2,order,2025-03-01 10:00,10\n"
    )

    result = narrowcast("import", "events", str(events))

    assert result.exit_code == 4
    assert_no_traceback(result)
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {events}: nothing was imported — 3 bad rows:\n"
        f"  {events}:3: value: expected a number, got 'ten'\n"
        f"  {events}:4: customer_id: no customer 'c9' in the store — import customers first\n"
        f"  {events}:5: ts: '2025-03-01 10:00' has no UTC offset — add one (e.g. +01:00 or Z) "
        "or pass --tz ZONE to say which time zone naive timestamps are in\n"
        "Fix these rows and import again, or pass --skip-invalid to store the good rows "
        f"and write the bad ones to {events}.rejects.jsonl.\n"
    )
    assert row_counts(store)["events"] == 0


def test_max_errors_shown_comes_from_the_config(store: Store, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config.toml",
        store.url.render_as_string(False),
        "[import]\nmax_errors_shown = 3\n",
    )
    events = write_rows(
        tmp_path / "events.jsonl",
        [{"customer_id": f"nobody{n}", "type": "order", "ts": TS} for n in range(10)],
    )

    result = CliRunner().invoke(cli, ["--config", str(config), "import", "events", str(events)])

    assert result.exit_code == 4
    assert re.findall(rf"^  {re.escape(str(events))}:(\d+):", result.stderr, re.M) == [
        "1",
        "2",
        "3",
    ]
    assert "(stopped reading after 3 problems)" in result.stderr


def test_skip_invalid_exits_0_and_the_summary_points_at_the_rejects(
    narrowcast: Invoke, store: Store, tmp_path: Path
) -> None:
    narrowcast("import", "customers", str(customers_file(tmp_path)))
    events = write_rows(
        tmp_path / "events.jsonl",
        [
            {"customer_id": "c1", "type": "order", "ts": TS},
            {"customer_id": "c1", "type": "order", "ts": "noon"},
            {"customer_id": "c2", "type": "order", "ts": TS},
        ],
    )
    rejects = tmp_path / "events.jsonl.rejects.jsonl"

    result = narrowcast("import", "events", str(events), "--skip-invalid")

    assert result.exit_code == 0
    assert f"3 rows read, 2 new, 1 rejected (see {rejects}) in" in result.stdout
    assert [orjson.loads(line)["line"] for line in rejects.read_bytes().splitlines()] == [2]
    assert row_counts(store)["events"] == 2


def test_rejects_option_names_the_file(narrowcast: Invoke, tmp_path: Path) -> None:
    customers = write_rows(tmp_path / "customers.jsonl", [{"id": "c1"}, {"id": "c2", "country": 7}])
    chosen = tmp_path / "bad-customers.jsonl"

    result = narrowcast(
        "import", "customers", str(customers), "--skip-invalid", "--rejects", str(chosen)
    )

    assert result.exit_code == 0, result.output
    [entry] = [orjson.loads(line) for line in chosen.read_bytes().splitlines()]
    assert (entry["line"], entry["reason"]) == (
        2,
        "country: expected a two-letter ISO country code like ES, got 7",
    )
    assert not (tmp_path / "customers.jsonl.rejects.jsonl").exists()


def test_rejects_in_a_missing_folder_is_refused_before_importing(
    narrowcast: Invoke, store: Store, tmp_path: Path
) -> None:
    customers = write_rows(tmp_path / "customers.jsonl", [{"id": "c1"}, {"id": ""}])
    chosen = tmp_path / "no-such-folder" / "rejects.jsonl"

    result = narrowcast(
        "import", "customers", str(customers), "--skip-invalid", "--rejects", str(chosen)
    )

    assert result.exit_code == 4
    assert_no_traceback(result)
    assert f"{chosen}: cannot write rejected rows there" in result.stderr
    assert row_counts(store)["customers"] == 0


def test_stdin_with_format(narrowcast: Invoke, store: Store) -> None:
    result = narrowcast(
        "import",
        "customers",
        "-",
        "--format",
        "jsonl",
        input=b'{"id": "c1", "city": "Oviedo"}\n{"id": "c2"}\n',
    )

    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        "<stdin>: "
        + SUMMARY.format(kind="customers", counts="2 rows read, 2 new, 0 updated")
        + "\n",
        result.stdout,
    )
    assert stored_customer(store, "c1")["city"] == "Oviedo"


def test_stdin_errors_name_stdin_and_its_line(narrowcast: Invoke, store: Store) -> None:
    result = narrowcast(
        "import", "customers", "-", "--format", "csv", input=b"id,country\nc1,ES\nc2,Spain\n"
    )

    assert result.exit_code == 4
    assert "  <stdin>:3: country: longer than 2 characters\n" in result.stderr
    assert row_counts(store)["customers"] == 0


def test_stdin_without_format_is_a_clear_error(narrowcast: Invoke) -> None:
    result = narrowcast("import", "events", "-", input=b'{"customer_id": "c1"}\n')

    assert result.exit_code != 0
    assert_no_traceback(result)
    assert result.stderr == "Error: reading from stdin (-) needs --format csv or --format jsonl\n"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.csv", "missing.csv: no such file"),
        ("events.txt", "events.txt: cannot tell the format from the name"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_clear_error(
    narrowcast: Invoke, tmp_path: Path, name: str, message: str
) -> None:
    if name != "missing.csv":
        (tmp_path / name).write_text("customer_id,type,ts\n")

    result = narrowcast("import", "events", str(tmp_path / name))

    assert result.exit_code == 4
    assert_no_traceback(result)
    assert message in result.stderr


def test_format_reads_a_file_whatever_its_name(
    narrowcast: Invoke, store: Store, tmp_path: Path
) -> None:
    export = tmp_path / "export.txt"
    export.write_text("id,city\nc1,Teruel\n")

    result = narrowcast("import", "customers", str(export), "--format", "csv")

    assert result.exit_code == 0, result.output
    assert stored_customer(store, "c1")["city"] == "Teruel"


def test_tz_reads_naive_timestamps(narrowcast: Invoke, store: Store, tmp_path: Path) -> None:
    narrowcast("import", "customers", str(customers_file(tmp_path)))
    events = write_rows(
        tmp_path / "events.csv",
        [{"customer_id": "c1", "type": "page_view", "ts": "2025-08-01T09:00:00"}],
    )

    result = narrowcast("import", "events", str(events), "--tz", "Europe/Madrid")

    assert result.exit_code == 0, result.output
    assert [e["ts"].isoformat() for e in stored_events(store)] == ["2025-08-01T07:00:00+00:00"]


def test_an_unknown_tz_is_a_usage_error(narrowcast: Invoke, tmp_path: Path) -> None:
    events = write_rows(tmp_path / "events.csv", [{"customer_id": "c1", "type": "x", "ts": TS}])

    result = narrowcast("import", "events", str(events), "--tz", "Not/AZone")

    assert result.exit_code == 2
    assert_no_traceback(result)
    assert (
        "Error: Invalid value for --tz: 'Not/AZone' is not an IANA time zone "
        "(e.g. Europe/Madrid, UTC)"
    ) in result.stderr


def test_a_database_that_was_never_upgraded_says_to_upgrade(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    config = write_config(tmp_path / "config.toml", f"sqlite:///{database}")
    customers = customers_file(tmp_path)
    runner = CliRunner()

    result = runner.invoke(cli, ["--config", str(config), "import", "customers", str(customers)])

    assert result.exit_code == 3
    assert_no_traceback(result)
    assert "is at schema version none" in result.stderr
    assert "run `narrowcast db upgrade`" in result.stderr
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    again = runner.invoke(cli, ["--config", str(config), "import", "customers", str(customers)])
    assert again.exit_code == 0, again.output


def test_a_progress_bar_is_drawn_only_on_a_terminal(sqlite_store: Store, tmp_path: Path) -> None:
    """Run the installed command with stderr on a pseudo-terminal, as a person would see it."""
    config = write_config(tmp_path / "config.toml", sqlite_store.url.render_as_string(False))
    write_rows(tmp_path / "customers.jsonl", [{"id": f"c{n}", "tier": n} for n in range(20_000)])
    controller, terminal = pty.openpty()
    env = os.environ | {"TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    try:
        process = subprocess.run(
            [str(NARROWCAST), "--config", str(config), "import", "customers", "customers.jsonl"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
    try:
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)

    assert process.returncode == 0
    assert b"importing customers.jsonl" in drawn
    assert process.stdout.decode().count("\n") == 1
    assert process.stdout.decode().startswith("customers.jsonl: imported customers — 20,000 rows")
