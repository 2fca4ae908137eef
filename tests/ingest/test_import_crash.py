"""An import killed half-way leaves the store as if it had never run.

The installed ``narrowcast`` command imports a large events file in a child
process; once the child has read a good part of the file (so several batches
are already written inside its transaction) it gets SIGKILL — no cleanup, no
rollback of its own. The database must then hold none of those events, be
intact, and accept the same import again in full.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from narrowcast.ingest import ImportOptions, import_customers, open_source
from narrowcast.store import Store
from tests.ingest.store_contents import row_counts

NARROWCAST = Path(sys.executable).with_name("narrowcast")
CUSTOMERS = 1_000
EVENTS = 200_000

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fdinfo").is_dir(), reason="watches the child's read position in /proc"
)


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "events.jsonl"
    with path.open("wb") as out:
        for n in range(EVENTS):
            event = {
                "event_id": f"e{n}",
                "customer_id": f"c{n % CUSTOMERS}",
                "type": "order" if n % 5 == 0 else "page_view",
                "ts": "2025-03-01T10:00:00+01:00",
                "value": n % 50,
                "page": f"/products/{n % 997}",
            }
            out.write(orjson.dumps(event) + b"\n")
    return path


def read_position(pid: int, path: Path) -> int | None:
    """How far the process has read ``path``, or ``None`` if it has not opened it yet."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            if os.readlink(fd) == str(path):
                info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                return int(info.split("pos:")[1].split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass  # the process or its file descriptor went away while we looked
    return None


def writing_transactions(store: Store) -> int:
    """How many other connections hold an open transaction that has written something."""
    if store.dialect == "sqlite":
        # The importer's BEGIN IMMEDIATE holds SQLite's write lock until it commits.
        probe = sqlite3.connect(str(store.url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return 1
        finally:
            probe.close()
    with store.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        ).scalar_one()


def test_an_import_killed_half_way_leaves_nothing_behind(
    store: Store, tmp_path: Path, events_file: Path
) -> None:
    customers = tmp_path / "customers.jsonl"
    customers.write_bytes(b"".join(b'{"id": "c%d"}\n' % n for n in range(CUSTOMERS)))
    import_customers(store, open_source(customers), ImportOptions())
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{store.url.render_as_string(False)}"\n')
    command = [str(NARROWCAST), "--config", str(config), "import", "events", str(events_file)]
    before = row_counts(store)
    size = events_file.stat().st_size

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        position = None
        while time.monotonic() < deadline and child.poll() is None:
            position = read_position(child.pid, events_file)
            if position is not None and position > size * 0.4:
                break
            time.sleep(0.01)
        writing = writing_transactions(store)
        still_running = child.poll() is None
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        out, err = child.communicate(timeout=30)

    assert still_running, (
        f"the import ended before it could be killed (read {position} of {size} bytes) — "
        f"make the file larger; it said {out!r} {err!r}"
    )
    assert position is not None and position > size * 0.4
    assert writing == 1, "the import should have been inside its write transaction"
    assert child.returncode == -signal.SIGKILL
    assert out == b""

    assert row_counts(store) == before
    assert before["events"] == 0
    if store.dialect == "sqlite":
        with store.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]

    again = subprocess.run(command, capture_output=True, timeout=120, check=False)

    assert again.returncode == 0, again.stderr.decode()
    assert f"{EVENTS:,} rows read, {EVENTS:,} new in" in again.stdout.decode()
    assert row_counts(store)["events"] == EVENTS
