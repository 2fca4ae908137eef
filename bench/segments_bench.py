"""Segment benchmark: every built-in segment, compiled by narrowcast vs written by hand.

For each database it builds (or reuses) a demo store — by default 1,000,000
customers and about 12.8 M events — then, for every built-in segment, times
counting its members with narrowcast's compiled query and with a hand-written
SQL query for the same rule (median of ``--repeat`` runs each, run
alternately), checks that both count the same customers, and prints the
ratio. Finally it times the plain-Python reference evaluator of the test
suite against the compiled queries on a smaller store.

Targets (issue 3): every built-in segment ≤ 3 s on SQLite at 1 M customers;
narrowcast / hand-written ≤ 1.5; ≥ 50× faster than the reference evaluator on
a 20,000-customer store.

Usage (from the repository root)::

    .venv/bin/python bench/segments_bench.py                       # 1 M customers, both DBs
    .venv/bin/python bench/segments_bench.py --customers 100000 --only sqlite
    .venv/bin/python bench/segments_bench.py --store-dir bench/out  # keep/reuse the stores

Exit status 0 when every target is met, 1 when one is missed, 2 when counts differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, create_engine, func, select, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the reference evaluator lives in tests/

from narrowcast.demo import generate_demo  # noqa: E402
from narrowcast.segments.definitions import load_definitions  # noqa: E402
from narrowcast.segments.evaluation import Evaluation  # noqa: E402
from narrowcast.store import Store  # noqa: E402
from narrowcast.store.schema import Instant  # noqa: E402

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SEED = 7
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS = 3.0
TARGET_RATIO = 1.5
TARGET_SPEEDUP = 50.0

# --- the hand-written queries ----------------------------------------------------------
# Written as a person would, straight from each rule's meaning. {p:name} is the JSON
# property `name` as text in the database's own syntax, {n:name} as a number.

ORDERS = "FROM events WHERE type = 'order' AND ts <= :now"
INTEREST = "('product_view', 'cart_add', 'checkout_start')"
STORE_AVG = f"(SELECT avg(value) {ORDERS})"


def grouped(where: str, having: str) -> str:
    return f"SELECT count(*) FROM (SELECT customer_id FROM events WHERE {where} AND ts <= :now GROUP BY customer_id HAVING {having}) t"  # noqa: E501


def latest_nps(condition: str) -> str:
    return (
        "SELECT count(*) FROM (SELECT {n:score} AS score, row_number() OVER (PARTITION BY "
        "customer_id ORDER BY ts DESC, id DESC) AS rn FROM events "
        f"WHERE type = 'nps_response' AND ts <= :now) t WHERE rn = 1 AND {condition}"
    )


HAND_WRITTEN: dict[str, str] = {
    "frequent_buyers_30d": grouped("type = 'order' AND ts > :d30", "count(*) >= 2"),
    "lapsing_buyers": grouped("type = 'order' AND ts > :d182", "max(ts) <= :d91"),
    "frequent_buyers": grouped("type = 'order' AND ts > :d182", "count(*) >= 5"),
    "coupon_only_buyers": grouped(
        "type = 'order'", "count(*) >= 2 AND count(*) = count({p:coupon})"
    ),
    "category_loyalists": grouped(
        "type = 'order'", "count(*) >= 3 AND count(DISTINCT {p:category}) = 1"
    ),
    "one_time_buyers": grouped(
        "type IN ('order', 'session_start')",
        "sum(CASE WHEN type = 'order' THEN 1 ELSE 0 END) = 1 "
        "AND sum(CASE WHEN type = 'session_start' THEN 1 ELSE 0 END) <= 1",
    ),
    "big_spenders": grouped("type = 'order'", f"avg(value) > {STORE_AVG}"),
    "vip": grouped(
        "type = 'order'",
        f"sum(CASE WHEN ts > :d365 THEN 1 ELSE 0 END) >= 5 AND avg(value) > {STORE_AVG}",
    ),
    "lost": grouped("type = 'order'", "max(ts) <= :d183"),
    "recommendation_clickers": grouped(
        "type IN ('recommendation_click', 'order')",
        "max(CASE WHEN type = 'order' THEN 1 ELSE 0 END) = 0",
    ),
    "cart_abandoners": (
        "SELECT count(*) FROM (SELECT customer_id, "
        "max(CASE WHEN type = 'order' THEN ts END) AS ordered, "
        "max(CASE WHEN type <> 'order' THEN ts END) AS carted "
        "FROM events WHERE type IN ('cart_add', 'checkout_start', 'order') "
        "AND ts > :d7 AND ts <= :now GROUP BY customer_id) t "
        "WHERE carted IS NOT NULL AND (ordered IS NULL OR carted > ordered)"
    ),
    "heavy_browsers": grouped("type = 'product_view'", "count(*) >= 12"),
    "long_dwell": grouped("type = 'product_view'", "avg({n:duration_s}) >= 180"),
    "new_visitors": grouped("type = 'session_start'", "count(*) = 1"),
    "returning_visitors": grouped("type = 'session_start'", "count(*) >= 2"),
    "nps_promoters": latest_nps("score >= 9"),
    "nps_passives": latest_nps("score >= 7 AND score < 9"),
    "nps_detractors": latest_nps("score < 7"),
    "hot_intent": grouped(f"type IN {INTEREST}", "max(ts) > :d7"),
    "warm_intent": grouped(f"type IN {INTEREST}", "max(ts) > :d30 AND max(ts) <= :d7"),
    "cold_intent": grouped(f"type IN {INTEREST}", "max(ts) <= :d30"),
    "hot_leads": grouped(
        "type IN ('page_view', 'session_start')",
        "sum(CASE WHEN type = 'page_view' AND {p:page} = 'pricing' THEN 10 "
        "WHEN type = 'page_view' AND {p:page} = 'demo' THEN 20 "
        "WHEN type = 'page_view' AND {p:page} = 'careers' THEN -5 "
        "WHEN type = 'session_start' AND {p:source} = 'search' THEN 5 "
        "WHEN type = 'session_start' AND {p:source} = 'social' THEN 1 ELSE 0 END) >= 30",
    ),
    "small_tickets": grouped("type = 'order'", "avg(value) < 2000"),
    "transactional_tickets": grouped("type = 'order'", "avg(value) BETWEEN 2000 AND 10000"),
    "large_tickets": grouped("type = 'order'", "avg(value) > 10000"),
    "business_accounts": (
        "SELECT count(*) FROM customers WHERE customer_type IN ('corporate', 'government')"
    ),
    "business_transactional": (
        "SELECT count(*) FROM customers WHERE customer_type IN ('corporate', 'government') "
        "AND id IN (SELECT customer_id FROM events WHERE type = 'order' AND ts <= :now "
        "GROUP BY customer_id HAVING avg(value) BETWEEN 2000 AND 10000)"
    ),
}
WINDOWS = {"d7": 7, "d30": 30, "d91": 91, "d182": 182, "d183": 183, "d365": 365}


def spelled(sql: str, dialect: str) -> str:
    """Fill in the JSON property syntax of ``dialect``."""

    def prop(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if dialect == "sqlite":
            return f"json_extract(properties, '$.{name}')"
        return f"(properties ->> '{name}')" + ("::float" if kind == "n" else "")

    return re.sub(r"\{([pn]):(\w+)\}", prop, sql)


def parameters() -> dict[str, Any]:
    return {"now": NOW, **{k: NOW - timedelta(days=d) for k, d in WINDOWS.items()}}


# --- stores ----------------------------------------------------------------------------


def sqlite_store(folder: Path, customers: int) -> Store:
    path = folder / f"segments-bench-{customers}.db"
    fresh = not path.exists()
    store = Store(f"sqlite:///{path}")
    if fresh:
        build(store, customers)
    return store


def postgres_store(admin_url: str, customers: int, keep: bool) -> tuple[Store, Callable[[], None]]:
    name = f"narrowcast_segbench_{customers}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    store = Store(url)
    if not exists:
        build(store, customers)

    def drop() -> None:
        store.dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return store, drop


def build(store: Store, customers: int) -> None:
    started = time.perf_counter()
    print(f"  building a demo store of {customers:,} customers in {store!r} …", flush=True)
    store.upgrade()
    report = generate_demo(store, customers=customers, seed=SEED, now=NOW)
    with store.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"  {report.summary()} ({time.perf_counter() - started:.0f} s)", flush=True)


# --- timing ----------------------------------------------------------------------------


def timed(run: Callable[..., int], *args: Any) -> tuple[float, int]:
    started = time.perf_counter()
    result = run(*args)
    return time.perf_counter() - started, result


def _count(conn: Connection, query: Any, params: dict[str, Any] | None = None) -> int:
    return int(conn.execute(query, params or {}).scalar_one())


def bench_store(store: Store, repeat: int) -> tuple[list[tuple[Any, ...]], bool]:
    definitions = load_definitions(Path("/nonexistent/segments.toml"))
    rows: list[tuple[Any, ...]] = []
    all_met = True
    dialect = store.dialect
    with store.connect() as conn:
        evaluation = Evaluation(definitions, conn, NOW)
        params = parameters()
        for name in definitions.segments:
            rule = evaluation.rule(name)
            compiled = select(func.count()).select_from(evaluation.query(rule).subquery())
            used = {k: v for k, v in params.items() if re.search(rf":{k}\b", HAND_WRITTEN[name])}
            hand = text(spelled(HAND_WRITTEN[name], dialect)).bindparams(
                *(_instant(key) for key in used)
            )
            ours: list[float] = []
            theirs: list[float] = []
            counts: set[int] = set()
            hand_counts: set[int] = set()
            for _ in range(repeat):
                seconds, count = timed(_count, conn, compiled)
                ours.append(seconds)
                counts.add(count)
                seconds, count = timed(_count, conn, hand, used)
                theirs.append(seconds)
                hand_counts.add(count)
            mine, reference = statistics.median(ours), statistics.median(theirs)
            ratio = mine / reference if reference > 0 else float("inf")
            same = counts == hand_counts and len(counts) == 1
            fast = dialect != "sqlite" or mine <= TARGET_SECONDS
            close = ratio <= TARGET_RATIO
            all_met &= fast and close and same
            rows.append(
                (
                    name,
                    next(iter(counts)),
                    mine,
                    reference,
                    ratio,
                    "PASS" if fast else "FAIL",
                    "PASS" if close else "FAIL",
                    "" if same else f"MISMATCH hand={sorted(hand_counts)}",
                )
            )
            print(_row(rows[-1]), flush=True)
    return rows, all_met


def _instant(key: str) -> Any:
    return bindparam(key, type_=Instant)


def _row(row: tuple[Any, ...]) -> str:
    name, count, mine, hand, ratio, fast, close, note = row
    return (
        f"  {name:24s} {count:>10,} {mine:>9.3f} {hand:>9.3f} {ratio:>6.2f}  {fast:4s}  "
        f"{close:4s} {note}"
    )


def bench_reference(folder: Path, customers: int) -> bool:
    """Compiled queries against the test suite's reference evaluator, on a small store."""
    from tests.segments.reference import World, evaluate

    store = sqlite_store(folder, customers)
    definitions = load_definitions(Path("/nonexistent/segments.toml"))
    world = World()
    with store.connect() as conn:
        for row in conn.execute(text("SELECT * FROM customers")).mappings():
            attributes = row["attributes"]
            if isinstance(attributes, str):
                attributes = json.loads(attributes)
            columns = {k: v for k, v in row.items() if k not in ("id", "attributes")}
            if isinstance(columns.get("birth_date"), str):
                columns["birth_date"] = datetime.fromisoformat(columns["birth_date"]).date()
            world.customer(row["id"], **columns, attributes=attributes)
        for row in conn.execute(
            text("SELECT customer_id, type, ts, properties FROM events ORDER BY id")
        ):
            ts = datetime.fromisoformat(row[2]).replace(tzinfo=UTC)
            world.event(row[0], row[1], ts, **json.loads(row[3]))
        print(
            f"  reference world: {len(world.customers):,} customers, {len(world.events):,} events"
        )
        evaluation = Evaluation(definitions, conn, NOW)
        total_sql = total_python = 0.0
        for name in definitions.segments:
            rule = evaluation.rule(name)
            sql_seconds, found = timed(lambda r: len(evaluation.ids(r)), rule)
            started = time.perf_counter()
            expected = evaluate(rule, world, NOW, definitions.scores)
            python_seconds = time.perf_counter() - started
            total_sql += sql_seconds
            total_python += python_seconds
            same = "" if found == len(expected) else f" MISMATCH reference={len(expected)}"
            print(
                f"  {name:24s} sql {sql_seconds:7.3f} s  reference {python_seconds:8.3f} s  "
                f"{python_seconds / max(sql_seconds, 1e-9):7.1f}×{same}",
                flush=True,
            )
    store.dispose()
    speedup = total_python / total_sql
    print(
        f"  all segments: sql {total_sql:.2f} s, reference {total_python:.2f} s — "
        f"{speedup:.0f}× (target ≥ {TARGET_SPEEDUP:.0f}×: "
        f"{'PASS' if speedup >= TARGET_SPEEDUP else 'FAIL'})"
    )
    return speedup >= TARGET_SPEEDUP


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reference-customers", type=int, default=20_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql", "reference"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store-dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL database.")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args()
    args.store_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" load average {os.getloadavg()[0]:.2f}; as of {NOW:%Y-%m-%d %H:%M} UTC"
    )
    header = (
        f"  {'segment':24s} {'members':>10s} {'ours s':>9s} {'hand s':>9s} {'ratio':>6s}  "
        f"≤{TARGET_SECONDS:g}s  ≤{TARGET_RATIO:g}×"
    )
    met = True
    mismatched = False
    if args.only in (None, "sqlite"):
        print(f"\nSQLite, {args.customers:,} customers")
        store = sqlite_store(args.store_dir, args.customers)
        print(header)
        rows, ok = bench_store(store, args.repeat)
        store.dispose()
        met &= ok
        mismatched |= any(row[-1] for row in rows)
    if args.only in (None, "postgresql"):
        print(f"\nPostgreSQL, {args.customers:,} customers")
        store, drop = postgres_store(args.pg_admin_url, args.customers, args.keep)
        try:
            print(header.replace(f"≤{TARGET_SECONDS:g}s", " -  "))
            rows, ok = bench_store(store, args.repeat)
        finally:
            drop()
        met &= ok
        mismatched |= any(row[-1] for row in rows)
    if args.only in (None, "reference"):
        print(f"\nreference evaluator vs SQL (SQLite), {args.reference_customers:,} customers")
        met &= bench_reference(args.store_dir, args.reference_customers)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if mismatched:
        return 2
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
