"""The replay bench on logs with a known truth: no network, no Open Bandit Dataset."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from narrowcast.planning.settings import LearningSettings

BENCH = Path(__file__).resolve().parents[2] / "bench" / "obp_replay.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("obp_replay", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


obp_replay = _load()

HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0\n"


def synthetic(rates: tuple[float, ...], rounds: int, seed: int = 7) -> Any:
    """A uniform random logger over arms with the given click rates."""
    rng = np.random.default_rng(seed)
    shown = rng.integers(0, len(rates), size=rounds)
    clicks = (rng.random(rounds) < np.array(rates)[shown]).astype(np.int64)
    return obp_replay.Log(
        arms=tuple(f"arm{i}" for i in range(len(rates))),
        shown=shown.astype(np.int64),
        clicks=clicks,
        propensities=np.full(rounds, 1 / len(rates)),
    )


def test_replay_finds_the_best_of_three_arms() -> None:
    rates = (0.02, 0.05, 0.15)
    rounds = 30_000
    log = synthetic(rates, rounds)
    uniform = float(log.clicks.mean())  # about 0.073

    run = obp_replay.replay(log, LearningSettings(), seed=0, batch=1000)

    # Under a uniform logger one round in three matches the policy's draw, whatever it draws.
    assert abs(run.accepted - rounds / 3) < 5 * np.sqrt(rounds * (1 / 3) * (2 / 3))
    # The first batch is an even split; after that nearly everything goes to arm2.
    assert run.ctr > uniform + 0.05
    assert run.ctr == pytest.approx(max(rates), abs=0.015)
    assert obp_replay.ips(log, run).value == pytest.approx(max(rates), abs=0.015)
    assert obp_replay.ips_ratio(log, run).interval.low > 1.5
    assert run.final.leader == "arm2"


def test_replay_refuses_a_log_that_was_not_uniform() -> None:
    log = synthetic((0.1, 0.2), 100)
    skewed = obp_replay.Log(log.arms, log.shown, log.clicks, np.full(100, 0.7))
    with pytest.raises(ValueError, match="uniform"):
        obp_replay.replay(skewed, LearningSettings(), seed=0)


def test_read_log_orders_by_time_and_keeps_every_item_as_an_arm(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(
        HEADER
        + "0,2019-11-24 00:00:09+00:00,7,1,1,0.3333333333333333,u\n"
        + "1,2019-11-24 00:00:01+00:00,2,2,0,0.3333333333333333,u\n"
        + "2,2019-11-24 00:00:05+00:00,4,1,0,0.3333333333333333,u\n"
    )
    log = obp_replay.read_log(path)
    assert log.arms == ("2", "4", "7")
    assert log.shown.tolist() == [0, 1, 2]
    assert log.clicks.tolist() == [0, 0, 1]
    assert log.uniform

    first = obp_replay.read_log(path, position=1)
    assert first.arms == ("2", "4", "7")
    assert first.shown.tolist() == [1, 2]


def test_extract_takes_the_log_out_of_an_sdist(tmp_path: Path) -> None:
    member = "obp/dataset/obd/random/men/men.csv"
    archive = tmp_path / "obp-0.5.7.tar.gz"
    body = (HEADER + "0,2019-11-24 00:00:01+00:00,3,1,0,0.5,u\n").encode()
    with tarfile.open(archive, "w:gz") as sdist:
        info = tarfile.TarInfo(f"obp-0.5.7/{member}")
        info.size = len(body)
        sdist.addfile(info, io.BytesIO(body))

    target = tmp_path / "cache" / member
    obp_replay.extract(archive, member, target)
    assert target.read_bytes() == body
