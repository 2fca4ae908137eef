"""Planning benchmark: plan entries per second over a demo store, and peak memory.

Plans campaigns with the real planner (the code ``dry-run`` and the worker
run) over a demo store — by default the 1,000,000-customer SQLite store that
``segments_bench.py`` builds in ``bench/out`` (built here if missing) — and
prints entries/s and the planning process's peak RSS. Each campaign is
planned in its own child process, so the RSS is the planner's own. Next to
the wall-clock rate it prints the rate per CPU second of the planning process
and the load average, because on a shared machine the wall clock mostly
measures the neighbours.

Targets (issue 4): ≥ 50,000 plan entries/s, peak RSS < 300 MB.

Usage (from the repository root)::

    .venv/bin/python bench/plan_bench.py                       # 1 M customers, SQLite
    .venv/bin/python bench/plan_bench.py --customers 100000
    .venv/bin/python bench/plan_bench.py --url postgresql+psycopg://…/db   # an existing store
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TARGET_RATE = 50_000
TARGET_RSS_MB = 300.0

CAMPAIGNS = {
    "everyone (email, push; fixed local time)": {
        "name": "everyone",
        "where": "True",
        "every": "1d",
        "channel": ["email", "push"],
        "send_time": "10:00",
        "window": "09:00-20:00",
        "holdout": 0.1,
        "variants": [{"name": "a"}, {"name": "b", "weight": 2}],
    },
    "lost customers (auto channel and hour)": {
        "name": "winback",
        "segment": "lost",
        "every": "1d",
        "channel": "auto",
        "send_time": "auto",
        "window": "09:00-20:00",
    },
}


def child(url: str, key: str) -> None:
    """Plan one campaign and print its figures as JSON (run in a fresh process)."""
    sys.path.insert(0, str(REPO / "src"))
    from narrowcast.campaigns import Campaign
    from narrowcast.planning import Planner, PlanningSettings
    from narrowcast.segments.definitions import load_definitions
    from narrowcast.store import Store

    store = Store(url)
    campaign = Campaign.model_validate(CAMPAIGNS[key])
    definitions = load_definitions(Path("/nonexistent/segments.toml"))
    cpu = _cpu_seconds()
    started = time.perf_counter()
    with store.connect() as conn:
        plan = Planner(conn, definitions, PlanningSettings(), NOW).plan(campaign)
        first = None
        count = 0
        for _ in plan:
            count += 1
            if first is None:
                first = time.perf_counter() - started
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000  # kB → MB
    print(
        json.dumps(
            {
                "entries": count,
                "planned": plan.summary.planned,
                "seconds": seconds,
                "cpu_s": cpu,
                "first_entry_s": first,
                "rss_mb": peak,
            }
        )
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--url", help="An existing, upgraded store (default: the bench store).")
    parser.add_argument("--child", nargs=2, metavar=("URL", "CAMPAIGN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    url = args.url
    if url is None:
        sys.path.insert(0, str(REPO / "bench"))
        from segments_bench import sqlite_store

        folder = REPO / "bench" / "out"
        folder.mkdir(parents=True, exist_ok=True)
        store = sqlite_store(folder, args.customers)
        store.upgrade()
        url = store.url.render_as_string(hide_password=False)
        store.dispose()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}; store {url}"
    )
    met = True
    print(
        f"  {'campaign':44s} {'entries':>10s} {'seconds':>8s} {'entries/s':>10s} "
        f"{'CPU s':>6s} {'per CPU s':>10s} {'RSS MB':>7s} {'load':>5s}"
    )
    for key in CAMPAIGNS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", url, key],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        rate = figures["entries"] / figures["seconds"]
        ok = rate >= TARGET_RATE and figures["rss_mb"] < TARGET_RSS_MB
        met &= ok
        per_cpu = figures["entries"] / figures["cpu_s"] if figures["cpu_s"] else 0.0
        print(
            f"  {key:44s} {figures['entries']:>10,} {figures['seconds']:>8.1f} "
            f"{rate:>10,.0f} {figures['cpu_s']:>6.1f} {per_cpu:>10,.0f} "
            f"{figures['rss_mb']:>7.0f} {os.getloadavg()[0]:>5.2f}  {'PASS' if ok else 'FAIL'}"
            f"  (first entry after {figures['first_entry_s']:.1f} s)"
        )
    print(
        f"targets: ≥ {TARGET_RATE:,} entries/s, RSS < {TARGET_RSS_MB:.0f} MB; "
        f"load average at the end {os.getloadavg()[0]:.2f}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
