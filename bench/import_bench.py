"""Import benchmark: N generated events through ``narrowcast import events``.

Generates a customers JSONL and an events JSONL (streamed to disk, never held in
memory), then for each database creates a fresh store, runs ``narrowcast db
upgrade``, imports the customers, and times ``narrowcast import events FILE`` run
as a separate process — exactly what an operator runs. It prints events/s and
the import process's peak RSS against the targets:

* SQLite      >= 50,000 events/s
* PostgreSQL  >= 100,000 events/s
* peak RSS    < 250 MB (10^6 bytes) for any file size

Usage (from the repository root)::

    .venv/bin/python bench/import_bench.py                     # 5 M events, both DBs
    .venv/bin/python bench/import_bench.py --events 200000 --only sqlite

Exit status: 0 when every target is met, 1 when a target is missed, 2 when
the benchmark itself went wrong (an import failed, or the stored event count
is not N).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_EVENTS_PER_S = {"sqlite": 50_000, "postgresql": 100_000}
TARGET_RSS_MB = 250.0
SEED = 20261123
REPO = Path(__file__).resolve().parent.parent

# --- data generation ---------------------------------------------------------

# (type, weight): a shop's usual mix — many page views, few orders.
EVENT_MIX = [
    ("page_view", 40),
    ("product_view", 25),
    ("session_start", 15),
    ("cart_add", 12),
    ("order", 8),
]
PAGES = ["/", "/sale", "/new", "/women", "/men", "/kids", "/help", "/account", "/cart"]
PAGES += [f"/c/{n}" for n in range(40)]
CATEGORIES = ["shoes", "dresses", "shirts", "jeans", "bags", "jackets", "sport", "home", "beauty"]
BRANDS = ["Acme", "Nordwind", "Lumen", "Sierra", "Oak & Co", "Pampa", "Kite", "Vela", "Moss"]
DEVICES = ["ios", "android", "web-desktop", "web-mobile"]
SOURCES = ["direct", "google", "newsletter", "instagram", "tiktok", "push", "affiliate"]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP", "PLN"]
COUNTRIES = ["ES", "PT", "FR", "DE", "IT", "PL", "GB", "US", "MX", "AR"]
# Offsets the timestamps are written in; "Z" is exercised too.
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2))]
ZONES += [timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
YEAR_START = datetime(2025, 11, 23, tzinfo=UTC).timestamp()
YEAR_SECONDS = 365 * 86_400


def customer_id(number: int) -> str:
    return f"b-{number:06d}"


def write_customers(path: Path, count: int) -> int:
    rng = random.Random(SEED)
    with path.open("wb", buffering=1 << 20) as fh:
        for number in range(1, count + 1):
            cid = customer_id(number)
            row = {"id": cid, "email": f"{cid}@example.com", "country": rng.choice(COUNTRIES)}
            fh.write(orjson.dumps(row) + b"\n")
    return path.stat().st_size


def events(count: int, customers: int, chronological: bool = False) -> Iterator[bytes]:
    """``count`` JSONL lines, deterministic for the seed; about half carry an event_id.

    Timestamps fall anywhere in one year, in file order (``chronological``, like an
    export sorted by time) or at random (the default, the harder case for the
    ``(type, ts)`` index).
    """
    rng = random.Random(SEED + 1)
    step = YEAR_SECONDS / count
    types = [name for name, weight in EVENT_MIX for _ in range(weight)]
    dumps = orjson.dumps
    for n in range(count):
        kind = rng.choice(types)
        zone = rng.choice(ZONES)
        second = int(n * step) if chronological else rng.randrange(YEAR_SECONDS)
        moment = datetime.fromtimestamp(YEAR_START + second, zone)
        ts = moment.isoformat()
        if zone is UTC and n % 2:
            ts = ts[:-6] + "Z"
        row: dict[str, object] = {
            "customer_id": customer_id(rng.randint(1, customers)),
            "type": kind,
            "ts": ts,
        }
        if n % 2 == 0:
            row["event_id"] = f"ev-{n:09d}"
        if kind == "page_view":
            row["page"] = rng.choice(PAGES)
            row["duration_s"] = round(rng.expovariate(1 / 40), 1)
        elif kind == "product_view" or kind == "cart_add":
            row["product"] = f"sku-{rng.randrange(20_000):05d}"
            row["category"] = rng.choice(CATEGORIES)
            row["brand"] = rng.choice(BRANDS)
            if kind == "product_view":
                row["duration_s"] = round(rng.expovariate(1 / 25), 1)
            else:
                row["quantity"] = rng.randint(1, 3)
                row["value"] = round(rng.uniform(5, 250), 2)
        elif kind == "session_start":
            row["device"] = rng.choice(DEVICES)
            row["source"] = rng.choice(SOURCES)
        else:  # order
            row["value"] = round(rng.uniform(9, 600), 2)
            row["currency"] = rng.choice(CURRENCIES)
            row["items"] = rng.randint(1, 8)
            row["category"] = rng.choice(CATEGORIES)
        yield dumps(row) + b"\n"


def write_events(path: Path, count: int, customers: int, chronological: bool = False) -> int:
    with path.open("wb", buffering=1 << 20) as fh:
        batch: list[bytes] = []
        for line in events(count, customers, chronological):
            batch.append(line)
            if len(batch) >= 10_000:
                fh.writelines(batch)
                batch.clear()
        fh.writelines(batch)
    return path.stat().st_size


# --- running narrowcast -------------------------------------------------------


@dataclass
class Run:
    """One ``narrowcast`` process: wall time, CPU time, peak RSS, output."""

    seconds: float
    cpu_seconds: float
    maxrss_kib: int
    """``ru_maxrss`` of the child from ``wait4``; see ``hwm_kib``."""
    hwm_kib: int
    """Last ``VmHWM`` polled from /proc while it ran (a lower bound of the peak)."""
    output: str
    load_before: float
    """1-minute load average when it started: above ~0.5 something else was running."""


def narrowcast_command() -> Path:
    script = Path(sys.executable).parent / "narrowcast"
    if not script.exists():
        sys.exit(f"no narrowcast console script next to {sys.executable}; pip install -e . first")
    return script


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # These would override --config; the bench must hit the database it created.
    env.pop("NARROWCAST_DATABASE_URL", None)
    env.pop("NARROWCAST_CONFIG", None)
    return env


def run_narrowcast(config: Path, *args: str) -> Run:
    """Run ``narrowcast --config CONFIG ARGS…`` and measure that process alone."""
    command = [str(narrowcast_command()), "--config", str(config), *args]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(),
        cwd=config.parent,
    )
    hwm = _HighWater(proc.pid)
    hwm.start()
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")  # small: one summary line
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    hwm.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise BenchError(f"`narrowcast {' '.join(args)}` exited {proc.returncode}:\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss, hwm.value, output, load_before)


class _HighWater(threading.Thread):
    """Polls the child's VmHWM: the peak RSS of its own address space."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._path = f"/proc/{pid}/status"
        self._done = threading.Event()
        self.value = 0

    def run(self) -> None:
        while not self._done.wait(0.05):
            try:
                with open(self._path, "rb") as fh:
                    for line in fh:
                        if line.startswith(b"VmHWM:"):
                            self.value = max(self.value, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        self._done.set()
        self.join()


class BenchError(Exception):
    pass


# --- stores -------------------------------------------------------------------


@dataclass
class Result:
    database: str
    events: int
    seconds: float
    import_seconds: float | None
    cpu_seconds: float
    rss_mb: float
    hwm_mb: float
    customers_seconds: float
    load_before: float
    load_after: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def rate_ok(self) -> bool:
        return self.rate >= TARGET_EVENTS_PER_S[self.database]

    @property
    def rss_ok(self) -> bool:
        return self.rss_mb < TARGET_RSS_MB


def write_config(workdir: Path, name: str, url: str) -> Path:
    path = workdir / f"{name}.config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    return path


def count_events(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


def bench_store(
    database: str, url: str, workdir: Path, customers_file: Path, events_file: Path, n: int
) -> Result:
    config = write_config(workdir, database, url)
    run_narrowcast(config, "db", "upgrade")
    customers = run_narrowcast(config, "import", "customers", str(customers_file))
    print(f"  {database}: customers imported in {customers.seconds:.1f} s", flush=True)
    run = run_narrowcast(config, "import", "events", str(events_file))
    print(f"  {database}: {run.output.strip()}", flush=True)
    stored = count_events(url)
    if stored != n:
        raise BenchError(f"{database}: {stored:,} events in the store after the import, not {n:,}")
    reported = re.search(r" in ([0-9.]+) s \(", run.output)
    return Result(
        database=database,
        events=n,
        seconds=run.seconds,
        import_seconds=float(reported.group(1)) if reported else None,
        cpu_seconds=run.cpu_seconds,
        rss_mb=run.maxrss_kib * 1024 / 1e6,
        hwm_mb=run.hwm_kib * 1024 / 1e6,
        customers_seconds=customers.seconds,
        load_before=run.load_before,
        load_after=os.getloadavg()[0],
    )


def bench_sqlite(workdir: Path, customers_file: Path, events_file: Path, n: int) -> Result:
    path = workdir / "bench.db"
    for leftover in (path, path.with_name("bench.db-wal"), path.with_name("bench.db-shm")):
        leftover.unlink(missing_ok=True)
    try:
        return bench_store("sqlite", f"sqlite:///{path}", workdir, customers_file, events_file, n)
    finally:
        size = path.stat().st_size if path.exists() else 0
        print(f"  sqlite: database file {size / 1e6:,.0f} MB", flush=True)


def bench_postgresql(
    admin_url: str, workdir: Path, customers_file: Path, events_file: Path, n: int
) -> Result:
    name = f"narrowcast_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            return bench_store("postgresql", url, workdir, customers_file, events_file, n)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def postgres_version(admin_url: str) -> str:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception as exc:  # noqa: BLE001 - only for the machine info line
        return f"unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()


# --- report -------------------------------------------------------------------


def source_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


def machine_info(args: argparse.Namespace) -> list[str]:
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    lines = [
        f"date        {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine     {platform.machine()}, {cpus} CPUs ({usable} usable), "
        f"{platform.system()} {platform.release()}",
        f"python      {platform.python_version()} ({sys.executable})",
        f"sqlite      {sqlite3.sqlite_version}",
    ]
    if args.only in (None, "postgresql"):
        lines.append(f"postgresql  {postgres_version(args.pg_admin_url)}")
    lines.append(f"narrowcast  {source_revision()}")
    return lines


def print_table(results: list[Result]) -> None:
    header = (
        f"{'database':<11} {'events':>10} {'seconds':>8} {'events/s':>9} {'target':>9} "
        f"{'rate':>4}  {'peak RSS MB':>11} {'target':>6} {'RSS':>4}  {'CPU s':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.database:<11} {r.events:>10,} {r.seconds:>8.1f} {r.rate:>9,.0f} "
            f"{'>=' + format(TARGET_EVENTS_PER_S[r.database], ','):>9} "
            f"{'PASS' if r.rate_ok else 'FAIL':>4}  {r.rss_mb:>11.0f} "
            f"{'<' + format(TARGET_RSS_MB, '.0f'):>6} {'PASS' if r.rss_ok else 'FAIL':>4}  "
            f"{r.cpu_seconds:>6.1f}"
        )
    print()
    print("seconds: wall time of the `narrowcast import events` process, start to exit")
    for r in results:
        own = f"{r.import_seconds:.1f} s" if r.import_seconds is not None else "?"
        print(
            f"  {r.database}: import loop itself (narrowcast's summary) {own}; "
            f"VmHWM polled {r.hwm_mb:.0f} MB; customers import {r.customers_seconds:.1f} s; "
            f"load average {r.load_before:.1f} before, {r.load_after:.1f} after"
        )
    if any(r.load_before > 1.0 for r in results):
        print("note: the machine was busy before an import started; its figures are pessimistic")


# --- main ---------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="events to import")
    parser.add_argument("--customers", type=int, default=100_000, help="customers they belong to")
    parser.add_argument(
        "--chronological",
        action="store_true",
        help="write events in time order (default: random order over the year)",
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="bench one database")
    parser.add_argument(
        "--pg-admin-url",
        default=DEFAULT_PG_ADMIN_URL,
        help="PostgreSQL URL allowed to CREATE/DROP DATABASE (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="where the files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    if args.events < 1 or args.customers < 1:
        parser.error("--events and --customers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    created = args.workdir is None
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix="narrowcast-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print("\n".join(machine_info(args)))
    print(f"workdir     {workdir}\n", flush=True)
    customers_file = workdir / "bench-customers.jsonl"
    events_file = workdir / "bench-events.jsonl"
    results: list[Result] = []
    try:
        started = time.perf_counter()
        size = write_customers(customers_file, args.customers)
        size += write_events(events_file, args.events, args.customers, args.chronological)
        order = "in time order" if args.chronological else "in random time order"
        print(
            f"generated {args.customers:,} customers and {args.events:,} events {order} "
            f"({size / 1e6:,.0f} MB of JSONL) in {time.perf_counter() - started:.1f} s "
            f"(not counted below)",
            flush=True,
        )
        # The child's ru_maxrss also counts this process's RSS at the fork (Linux keeps
        # the larger of the two across exec), so this process must stay small.
        own_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"bench process peak RSS so far {own_kib * 1024 / 1e6:.0f} MB\n", flush=True)
        for database in ("sqlite", "postgresql"):
            if args.only not in (None, database):
                continue
            print(f"{database}:", flush=True)
            if database == "sqlite":
                result = bench_sqlite(workdir, customers_file, events_file, args.events)
            else:
                result = bench_postgresql(
                    args.pg_admin_url, workdir, customers_file, events_file, args.events
                )
            results.append(result)
    except BenchError as exc:
        print(f"\nBENCH FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept the files in {workdir}")
        elif created:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for pattern in ("bench-*.jsonl", "bench.db*", "*.config.toml"):
                for path in workdir.glob(pattern):
                    path.unlink()
    print()
    print_table(results)
    return 0 if all(r.rate_ok and r.rss_ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
