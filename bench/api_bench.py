"""HTTP API benchmark: event ingest throughput and web-message lookup latency.

For each database (a fresh SQLite file, a fresh PostgreSQL database
``narrowcast_apibench_<pid>``) it starts the API with uvicorn in a separate process
on 127.0.0.1, fills N customers through ``POST /v1/customers`` and seeds a few
web messages, then drives load from this process over keep-alive HTTP/1.1
connections written by hand (an httpx client cost this process more CPU per
request than the server spent, and on a 2-core machine the client would be
what is measured):

(a) ``GET /v1/web-messages?visitor=<id>&returning=false&referrer=search&path=/``
    at a fixed offered rate (open loop: request i is due at start + i/rate),
    latency measured from when it was due, so a server that falls behind is
    not flattered by requests waiting to be sent.
(b) ``POST /v1/events``, batches of 100 events (every event with an
    ``event_id``, the import bench's mix of types), a fixed number of
    connections each sending its next batch as soon as the last one is
    answered; bounded by ``--batches`` and ``--seconds``. Reports requests/s,
    events/s and p50/p99 latency, then checks the store holds every event.

For each phase it also reports the CPU seconds spent by the server processes,
by the PostgreSQL backends of the bench database and by this client (read
from ``/proc``; Linux only), so that a run on a shared machine can be judged
per CPU-second as well as per wall-clock second.

Targets: ≥ 20,000 events/s on PostgreSQL; web-message p99 < 20 ms at 500/s.
Exit status 0 when every target is met, 1 otherwise.

Usage (from the repository root)::

    .venv/bin/python bench/api_bench.py
    .venv/bin/python bench/api_bench.py --only postgresql --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from narrowcast.store import Store
from narrowcast.store.schema import events, web_messages

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DATABASE_PREFIX = "narrowcast_apibench_"
PG_DATABASE = f"{PG_DATABASE_PREFIX}{os.getpid()}"
"""One database per run: two runs at once on a shared machine must not drop each other's."""
API_KEY = "bench-api-key-0123456789"
BATCH = 100
TARGET_EVENTS_PER_S = 20_000  # on PostgreSQL
TARGET_WEB_P99_MS = 20.0
WEB_RATE = 500
TYPES = [
    ("page_view", 40),
    ("product_view", 25),
    ("session_start", 15),
    ("cart_add", 12),
    ("order", 8),
]


# --- the server process --------------------------------------------------------------------


def create() -> object:
    """The app for uvicorn's ``--factory`` in the server process (settings from the env)."""
    from narrowcast.api.app import create_app
    from narrowcast.api.settings import ApiSecrets, ApiSettings
    from narrowcast.config import Settings
    from narrowcast.render.links import Signer
    from narrowcast.render.settings import LinksSettings

    url = os.environ["NARROWCAST_APIBENCH_URL"]
    settings = Settings(api=ApiSettings(), links=LinksSettings(base_url="http://127.0.0.1:8000"))
    secrets = ApiSecrets(api_key=API_KEY, identity_secret=b"bench-identity-secret-0123456789")
    return create_app(
        settings, Store(url), secrets=secrets, signer=Signer(b"bench-link-secret-0123456789abcd")
    )


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "api_bench:create",
        factory=True,
        app_dir=str(BENCH),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http=args.http,
        loop=args.loop,
        log_level="warning",
        access_log=False,
    )


@contextlib.contextmanager
def api_server(url: str, args: argparse.Namespace, log: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, __file__, "serve", "--port", str(port)]
    command += ["--workers", str(args.workers), "--http", args.http, "--loop", args.loop]
    env = {**os.environ, "NARROWCAST_APIBENCH_URL": url}
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the API server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the API server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    path = workdir / "apibench.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    yield url


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            # A run killed half-way leaves its database behind: drop those of runs gone.
            for name in abandoned(conn):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
        url = make_url(admin_url).set(database=PG_DATABASE).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        admin.dispose()


def abandoned(conn: Connection) -> list[str]:
    """Bench databases whose run (the process in the name) is no longer running."""
    names = conn.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"),
        {"prefix": PG_DATABASE_PREFIX + "%"},
    ).scalars()
    gone = []
    for name in names:
        pid = name.removeprefix(PG_DATABASE_PREFIX)
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            gone.append(name)
        except PermissionError:
            pass  # someone else's process: alive
    return gone


def upgrade(url: str) -> None:
    store = Store(url)
    store.upgrade()
    store.dispose()


def seed_web_messages(url: str, customers: int) -> None:
    """Three messages for any visitor plus one for every tenth customer, as a campaign leaves."""
    now = datetime.now(UTC)
    rows = []
    for n, placement in enumerate(("banner", "modal", "toast")):
        rows.append(web_message(n + 1, None, placement, ["search"] if n == 0 else [], "/*", now))
    for number in range(1, customers + 1, 10):
        rows.append(web_message(1000 + number, customer_id(number), "banner", [], "*", now))
    store = Store(url)
    with store.begin() as conn:
        conn.execute(web_messages.insert(), rows)
    if store.dialect == "postgresql":
        # Statistics as autovacuum would have them in a store in use: right after a bulk
        # insert PostgreSQL has none, and plans the lookup as a scan of every message.
        with store.begin() as conn:
            conn.exec_driver_sql("ANALYZE web_messages")
            conn.exec_driver_sql("ANALYZE web_views")
    store.dispose()


def web_message(
    outbox_id: int,
    customer: str | None,
    placement: str,
    referrers: list[str],
    path: str,
    now: datetime,
) -> dict[str, object]:
    return {
        "outbox_id": outbox_id,
        "customer_id": customer,
        "campaign": "bench",
        "variant": None,
        "placement": placement,
        "visitor": "any",
        "referrers": referrers,
        "path": path,
        "survey": None,
        "parts": {"title": "Spring sale", "body": "20 % off boots", "cta_url": "/boots"},
        "created_at": now,
        "expires_at": now + timedelta(days=7),
    }


def count_events(url: str) -> int:
    store = Store(url)
    with store.connect() as conn:
        found = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    store.dispose()
    return found


# --- load ----------------------------------------------------------------------------------


def customer_id(number: int) -> str:
    return f"b-{number:06d}"


def event_batches(count: int, customers: int, seed: int = 7) -> list[bytes]:
    """``count`` request bodies of ``BATCH`` events each, serialised before timing starts."""
    rng = random.Random(seed)
    names, weights = zip(*TYPES, strict=True)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    bodies = []
    serial = 0
    for _ in range(count):
        items = []
        for kind in rng.choices(names, weights, k=BATCH):
            serial += 1
            ts = start + timedelta(seconds=rng.randrange(365 * 86_400))
            item: dict[str, object] = {
                "customer_id": customer_id(rng.randint(1, customers)),
                "type": kind,
                "ts": ts.isoformat(),
                "event_id": f"api-{serial}",
            }
            if kind == "page_view":
                item.update(page=f"/p/{rng.randrange(500)}", duration_s=rng.randrange(1, 300))
            elif kind in ("product_view", "cart_add"):
                item.update(product=f"sku-{rng.randrange(2000)}", category="shoes", brand="acme")
                if kind == "cart_add":
                    item.update(quantity=rng.randint(1, 3), value=round(rng.uniform(5, 200), 2))
            elif kind == "session_start":
                item.update(device=rng.choice(["ios", "android", "web"]), source="search")
            else:
                item.update(value=round(rng.uniform(10, 400), 2), currency="EUR", items=2)
            items.append(item)
        bodies.append(orjson.dumps({"events": items}))
    return bodies


async def fill_customers(base: str, customers: int) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        for first in range(1, customers + 1, 1000):
            batch = [
                {"id": customer_id(n), "email": f"{customer_id(n)}@example.com", "country": "ES"}
                for n in range(first, min(first + 1000, customers + 1))
            ]
            response = await client.post("/v1/customers", json={"customers": batch})
            response.raise_for_status()


class Http:
    """One keep-alive HTTP/1.1 connection, one request in flight, responses read by length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, base: str) -> Http:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length is None:
            raise RuntimeError(f"a response without Content-Length: {head[:300]!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def post_request(base: str, path: str, body: bytes) -> bytes:
    host = base.removeprefix("http://")
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


@dataclass
class Cpu:
    """CPU seconds spent during one phase by the server, PostgreSQL's backends, this client."""

    server: float = 0.0
    postgres: float | None = None
    client: float = 0.0

    def per(self, count: int) -> str:
        """Milliseconds of CPU per request (server + postgres), for the report."""
        if not count:
            return "-"
        return f"{(self.server + (self.postgres or 0.0)) / count * 1000:.2f}"


class CpuMeter:
    """Reads the CPU of the server's process tree and of the bench database's backends.

    The PostgreSQL figure counts the backends serving the bench database (read
    from ``/proc``, so only for a server on this machine); WAL writer,
    checkpointer and the like serve every database and are left out.
    """

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid = server_pid
        self.url = url
        self.engine = (
            create_engine(url, poolclass=NullPool) if url.startswith("postgresql") else None
        )

    def _backends(self) -> list[int] | None:
        if self.engine is None or not Path("/proc/self/stat").exists():
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [int(row[0]) for row in rows]

    def _read(self) -> tuple[dict[int, float], dict[int, float] | None, float]:
        server = {pid: process_cpu(pid) for pid in process_tree(self.server_pid)}
        backends = self._backends()
        postgres = None if backends is None else {pid: process_cpu(pid) for pid in backends}
        return server, postgres, time.process_time()

    @contextlib.contextmanager
    def measure(self) -> Iterator[Cpu]:
        cpu = Cpu()
        server0, postgres0, client0 = self._read()
        yield cpu
        server1, postgres1, client1 = self._read()
        # A process that started during the phase spent all of its CPU in it.
        cpu.server = sum(t - server0.get(pid, 0.0) for pid, t in server1.items())
        if postgres0 is not None and postgres1 is not None:
            cpu.postgres = sum(t - postgres0.get(pid, 0.0) for pid, t in postgres1.items())
        cpu.client = client1 - client0

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    failures: int = 0
    first_failure: str = ""
    cpu: Cpu = field(default_factory=Cpu)
    load_average: tuple[float, float] = (0.0, 0.0)
    """The 1-minute load average when the phase started and when it ended."""

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def fail(self, message: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or message


async def post_events(base: str, bodies: list[bytes], connections: int, seconds: float) -> Load:
    load = Load()
    requests = iter([post_request(base, "/v1/events", body) for body in bodies])
    clients = [await Http.open(base) for _ in range(connections)]
    try:
        for client, request in zip(clients, [next(requests) for _ in range(4)], strict=False):
            _, body = await client.exchange(request)  # warm-up, not timed
            load.accepted += orjson.loads(body).get("accepted", 0)
        started = time.perf_counter()
        stop_at = started + seconds

        async def connection(client: Http) -> None:
            for request in requests:
                if time.perf_counter() > stop_at:
                    return
                sent = time.perf_counter()
                status, body = await client.exchange(request)
                load.latencies.append(time.perf_counter() - sent)
                if status != 200:
                    load.fail(f"{status} {body[:300]!r}")
                    continue
                load.requests += 1
                load.accepted += orjson.loads(body)["accepted"]

        await asyncio.gather(*(connection(client) for client in clients))
        load.seconds = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    return load


async def get_web_messages(base: str, customers: int, rate: int, seconds: float) -> Load:
    """Open-loop lookups at ``rate``/s over keep-alive connections (enough for the rate)."""
    load = Load()
    rng = random.Random(11)
    total = int(rate * seconds)
    visitors = [f"visitor-{rng.getrandbits(64):016x}" for _ in range(2000)]
    host = base.removeprefix("http://")
    params = "&returning=false&referrer=search&path=/"
    requests = [
        f"GET /v1/web-messages?visitor={v}{params} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for v in visitors
    ]
    connections = 32
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection() -> None:
        client = await Http.open(base)
        try:
            for request in requests[:5]:  # warm-up, not timed
                await client.exchange(request)
            while (item := await queue.get()) is not None:
                due, request = item
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if time.perf_counter() > deadline:
                    load.fail("not sent: the server was too far behind the offered rate")
                    continue
                status, _ = await client.exchange(request)
                load.latencies.append(time.perf_counter() - due)
                if status != 200:
                    load.fail(f"status {status}")
                    continue
                load.requests += 1
        finally:
            client.close()

    started = time.perf_counter() + 0.5
    # Bounded in time as well as in count: once the server is this far behind, the
    # lookups not yet sent are counted as failed instead of sent late.
    deadline = started + seconds * 2 + 10
    for i in range(total):
        queue.put_nowait((started + i / rate, requests[i % len(requests)]))
    for _ in range(connections):
        queue.put_nowait(None)
    await asyncio.gather(*(connection() for _ in range(connections)))
    load.seconds = time.perf_counter() - started
    return load


# --- one database --------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    ingest: Load
    web: Load
    stored: int

    @property
    def events_per_s(self) -> float:
        return self.ingest.requests * BATCH / self.ingest.seconds if self.ingest.seconds else 0.0


def bench(database: str, url: str, args: argparse.Namespace, workdir: Path) -> Result:
    bodies = event_batches(args.batches + 4, args.customers)
    with api_server(url, args, workdir / f"server-{database}.log") as (base, pid):
        meter = CpuMeter(pid, url)
        started = time.perf_counter()
        asyncio.run(fill_customers(base, args.customers))
        print(
            f"  {database}: {args.customers:,} customers in {time.perf_counter() - started:.1f} s"
        )
        seed_web_messages(url, args.customers)
        # Lookups first: after 300,000 events the database's own catch-up (autovacuum,
        # SQLite's WAL checkpoint) competes for the same two cores and would be measured.
        web = phase(meter, get_web_messages(base, args.customers, args.web_rate, args.web_seconds))
        print(f"  {database}: web {web.requests:,} lookups in {web.seconds:.1f} s")
        ingest = phase(meter, post_events(base, bodies, args.connections, args.seconds))
        print(f"  {database}: ingest {ingest.requests:,} requests in {ingest.seconds:.1f} s")
        meter.dispose()
    return Result(database, ingest, web, count_events(url))


def phase(meter: CpuMeter, work: Coroutine[Any, Any, Load]) -> Load:
    before = os.getloadavg()[0]
    with meter.measure() as cpu:
        load = asyncio.run(work)
    load.cpu = cpu
    load.load_average = (before, os.getloadavg()[0])
    return load


# --- report --------------------------------------------------------------------------------


def machine_info(args: argparse.Namespace) -> list[str]:
    cpus = os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    revision = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()[:80]
    return [
        f"date        {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine     {platform.machine()}, {cpus} CPUs, load average {load}",
        f"python      {platform.python_version()}, sqlite {sqlite3.sqlite_version}",
        f"narrowcast  {revision}",
        f"server      uvicorn --workers {args.workers} --http {args.http} --loop {args.loop}",
        f"load        {args.connections} connections x batches of {BATCH} events "
        f"(at most {args.batches:,} batches or {args.seconds:.0f} s); web {args.web_rate}/s "
        f"for {args.web_seconds:.0f} s",
    ]


def report(results: list[Result]) -> bool:
    ok = True
    header = (
        f"{'database':<11} {'req/s':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'target':>9} {'':>4}  {'web p50':>7} {'web p99':>7} {'target':>6} {'':>4}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate_ok: bool | None = None
        if r.database == "postgresql":
            rate_ok = r.events_per_s >= TARGET_EVENTS_PER_S and not r.ingest.failures
        web_ok = r.web.percentile(99) < TARGET_WEB_P99_MS and not r.web.failures
        ok = ok and rate_ok is not False and web_ok
        verdict = "" if rate_ok is None else ("PASS" if rate_ok else "FAIL")
        target = f">={TARGET_EVENTS_PER_S:,}" if rate_ok is not None else "-"
        print(
            f"{r.database:<11} {r.ingest.rate:>7,.0f} {r.events_per_s:>9,.0f} "
            f"{r.ingest.percentile(50):>7.1f} {r.ingest.percentile(99):>7.1f} "
            f"{target:>9} {verdict:>4}  {r.web.percentile(50):>7.1f} "
            f"{r.web.percentile(99):>7.1f} {'<' + format(TARGET_WEB_P99_MS, '.0f'):>6} "
            f"{'PASS' if web_ok else 'FAIL':>4}"
        )
    print()
    print(
        f"{'CPU seconds':<18} {'server':>7} {'postgres':>8} {'client':>7} "
        f"{'ms/request':>10} {'per CPU-s':>10}  load average"
    )
    for r in results:
        for what, load, unit, count in (
            ("web", r.web, "lookups", r.web.requests),
            ("ingest", r.ingest, "events", r.ingest.requests * BATCH),
        ):
            cpu = load.cpu
            spent = cpu.server + (cpu.postgres or 0.0)
            postgres = "-" if cpu.postgres is None else f"{cpu.postgres:.1f}"
            per_cpu = f"{count / spent:,.0f}" if spent else "-"
            print(
                f"{r.database + ' ' + what:<18} {cpu.server:>7.1f} {postgres:>8} "
                f"{cpu.client:>7.1f} {cpu.per(load.requests):>10} {per_cpu:>10} {unit:<7} "
                f"{load.load_average[0]:.1f} -> {load.load_average[1]:.1f}"
            )
    print("(ms/request and per CPU-s: server + postgres backends; the client is this process)")
    cpus = os.cpu_count() or 1
    if any(max(r.web.load_average) > cpus for r in results):
        print(
            f"note: the load average passed the {cpus} CPUs during a web phase — its p99 then "
            "measures the other processes' CPU use as much as the server's"
        )
    for r in results:
        for what, load in (("ingest", r.ingest), ("web", r.web)):
            if load.failures:
                print(f"{r.database} {what}: {load.failures} failed — first: {load.first_failure}")
        if r.stored != r.ingest.accepted:
            ok = False
            print(f"{r.database}: {r.ingest.accepted:,} accepted but {r.stored:,} stored")
    return ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="(internal) the server process")
    server.add_argument("--port", type=int, required=True)
    for p in (parser, server):
        p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
        p.add_argument("--http", default="httptools", choices=["h11", "httptools"])
        p.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=3_000, help="most event requests")
    parser.add_argument("--seconds", type=float, default=30.0, help="most seconds of ingest")
    parser.add_argument("--connections", type=int, default=8, help="concurrent ingest requests")
    parser.add_argument("--web-rate", type=int, default=WEB_RATE, help="lookups per second")
    parser.add_argument("--web-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        serve(args)
        return 0
    print("\n".join(machine_info(args)))
    workdir = Path(tempfile.mkdtemp(prefix="narrowcast-apibench-"))
    results = []
    try:
        if args.only in (None, "sqlite"):
            with sqlite_database(workdir) as url:
                results.append(bench("sqlite", url, args, workdir))
        if args.only in (None, "postgresql"):
            with postgres_database(args.pg_admin_url) as url:
                results.append(bench("postgresql", url, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    ok = report(results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
