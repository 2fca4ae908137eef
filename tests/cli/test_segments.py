"""``narrowcast segments …`` as an operator runs it, on a demo shop in a SQLite file.

The demo's personas are known, so a built-in segment can be checked against
the customers it is meant to find.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from narrowcast.cli import cli
from narrowcast.demo import generate_demo
from narrowcast.store import Store
from narrowcast.store.schema import customers

AT = "2026-12-01T12:00:00Z"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import UTC, datetime

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    generate_demo(store, customers=600, seed=3, now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    store.dispose()
    return path


@pytest.fixture
def shop(demo_db: Path, tmp_path: Path) -> Iterator[Path]:
    """A folder with a copy of the demo store and a config.toml naming it."""
    shutil.copy(demo_db, tmp_path / "narrowcast.db")
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///narrowcast.db"\n')
    (tmp_path / "campaigns").mkdir()
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_shows_every_segment_with_its_size(shop: Path) -> None:
    result = run("segments", "list", "--at", AT)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["segment", "size", "defined", "in", "description"]
    assert any(line.startswith("vip ") and "built-in" in line for line in lines)
    rows = json.loads(run("segments", "list", "--at", AT, "--json").output)
    by_name = {row["name"]: row for row in rows}
    assert by_name["business_accounts"]["size"] > 0
    assert by_name["business_accounts"]["where"].startswith("customer_type in")


def test_show_lists_members_and_json_gives_all_with_limit_0(shop: Path) -> None:
    result = run("segments", "show", "business_accounts", "--at", AT, "--limit", "2")
    assert result.exit_code == 0
    first = result.output.splitlines()[0]
    assert (
        first.startswith("business_accounts: ") and "customers as of 2026-12-01 12:00:00" in first
    )
    everyone = json.loads(
        run("segments", "show", "business_accounts", "--at", AT, "--json", "--limit", "0").output
    )
    assert everyone["count"] == len(everyone["customer_ids"]) > 2
    assert "(showing 2 of" in result.output
    where = json.loads(
        run(
            "segments",
            "show",
            "--where",
            "segment('business_accounts') and in_geo('ES')",
            "--at",
            AT,
            "--json",
            "--limit",
            "0",
        ).output
    )
    assert set(where["customer_ids"]) <= set(everyone["customer_ids"])


def test_built_in_segments_find_their_personas(shop: Path) -> None:
    """On the demo shop, the playbook segments find the personas they describe."""
    store = Store(f"sqlite:///{shop / 'narrowcast.db'}")
    with store.connect() as conn:
        persona_of = select(customers.c.id, customers.c.attributes["persona"].as_string())
        persona = {str(c): str(p) for c, p in conn.execute(persona_of)}
    store.dispose()
    expectations = {
        "cart_abandoners": "cart_abandoner",
        "coupon_only_buyers": "coupon_hunter",
        "long_dwell": "heavy_browser",
        "vip": "vip",
        "transactional_tickets": "b2b_account",
        "frequent_buyers": "frequent_buyer",
        "recommendation_clickers": "recommendation_clicker",
    }
    for segment, wanted in expectations.items():
        found = json.loads(
            run("segments", "show", segment, "--at", AT, "--json", "--limit", "0").output
        )["customer_ids"]
        of_persona = {c for c, p in persona.items() if p == wanted}
        hits = sum(1 for c in found if persona[c] == wanted)
        assert found, segment
        # Most of the segment is the persona, and most of the persona is found.
        assert hits / len(found) >= 0.5, (segment, hits, len(found))
        assert hits / len(of_persona) >= 0.6, (segment, hits, len(of_persona))


def test_explain_a_customer(shop: Path) -> None:
    ids = json.loads(run("segments", "show", "vip", "--at", AT, "--json").output)["customer_ids"]
    result = run("segments", "explain", "vip", "--customer", ids[0], "--at", AT)
    assert result.exit_code == 0
    assert f"customer '{ids[0]}' is IN the segment" in result.output
    assert "✓ segment('big_spenders')" in result.output
    assert "store_avg('order', 'value') = " in result.output


def test_snapshot_then_flow(shop: Path) -> None:
    first = run("segments", "snapshot", "--at", "2026-11-01T12:00:00Z")
    assert first.exit_code == 0 and "snapshot at 2026-11-01 12:00:00 UTC" in first.output
    assert run("segments", "flow").exit_code != 0  # one snapshot is not a flow
    assert run("segments", "snapshot", "--at", AT).exit_code == 0
    result = run("segments", "flow", "--json")
    assert result.exit_code == 0, result.output
    flow = json.loads(result.output)
    assert flow["since"].startswith("2026-11-01T12:00:00") and flow["until"].startswith("2026-12")
    assert flow["moved"] and all(m["customers"] > 0 for m in flow["moved"])
    matrix = run("segments", "flow", "--matrix")
    assert matrix.output.splitlines()[1].startswith("from \\ to")
    again = run("segments", "snapshot", "vip", "--at", "2026-10-01T00:00:00Z")
    assert "skipped 1 already snapshotted" in again.output


def test_score_fits_clv_and_rules_can_use_it(shop: Path) -> None:
    result = run("segments", "score", "--at", AT)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("clv for ")
    top = json.loads(run("segments", "show", "--where", "clv > 0", "--at", AT, "--json").output)
    assert top["count"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "vips"], "unknown segment 'vips' — did you mean 'vip'?"),
        (["show", "--where", "contry == 'ES'"], "did you mean 'country'?"),
        (["show", "--where", "count('order' >= 2"], "--where, column"),
        (["show"], "give a segment NAME or --where RULE"),
        (["show", "vip", "--at", "2026-12-01T12:00"], "has no UTC offset"),
        (["explain", "vip", "--customer", "nobody"], "there is no customer 'nobody'"),
        (["snapshot", "vipp"], "did you mean 'vip'?"),
    ],
)
def test_mistakes_are_reported_without_a_traceback(
    shop: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["segments", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_broken_segments_file_is_reported_with_its_line(shop: Path) -> None:
    (shop / "campaigns" / "segments.toml").write_text(
        "[segments.mine]\nwhere = \"ever('ordr')\"\n\n"
        "[segments.fine]\nwhere = \"country == 'ES'\"\n"
    )
    result = CliRunner().invoke(cli, ["segments", "list", "--at", AT])
    assert result.exit_code == 2
    assert "campaigns/segments.toml:2, column 1: unknown event type 'ordr'" in result.output
    assert any(line.startswith("fine ") for line in result.output.splitlines())
