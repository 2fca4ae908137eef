"""``validate``, ``dry-run`` and ``campaigns list`` as a marketer runs them, mistakes included."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from narrowcast.cli import cli
from narrowcast.demo import generate_demo
from narrowcast.store import Store

AT = "2026-12-01T12:00:00Z"
REPO = Path(__file__).resolve().parents[2]

WINBACK = """
name = "winback"
description = "Bring lost customers back"
segment = "lost"
cron = "0 9 * * MON"
timezone = "Europe/Madrid"
channel = ["email"]
holdout = 0.1
"""
SUBJECT = "{{ customer.first_name or 'Hi' }}, we miss you"
HTML = """<html><body><h1>Come back, {{ customer.first_name or 'friend' }}</h1>
<p><a href="{{ track('https://shop.example.com/') }}">Shop now</a></p>
<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p></body></html>"""


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    generate_demo(store, customers=400, seed=5, now=datetime(2026, 12, 1, 12, tzinfo=UTC))
    store.dispose()
    return path


@pytest.fixture
def shop(demo_db: Path, tmp_path: Path) -> Iterator[Path]:
    shutil.copy(demo_db, tmp_path / "narrowcast.db")
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///narrowcast.db"\n')
    write(tmp_path, "campaigns/winback.toml", WINBACK)
    write(tmp_path, "templates/winback/email.subject.j2", SUBJECT)
    write(tmp_path, "templates/winback/email.html.j2", HTML)
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_validate_passes_and_reports_what_it_rendered(shop: Path) -> None:
    result = run("validate", "--at", AT)
    assert result.exit_code == 0, result.output
    assert "1 campaign(s) checked" in result.output and "OK" in result.output
    report = json.loads(run("validate", "--at", AT, "--json").output)
    assert report["ok"] and report["campaigns"] == ["winback"] and report["rendered"] >= 1


def test_validate_reports_every_problem_in_one_run(shop: Path) -> None:
    write(shop, "campaigns/typo.toml", 'name = "typo"\nsegment = "lostt"\nevery = "1d"\n')
    write(
        shop,
        "campaigns/rules.toml",
        'name = "rules"\nwhere = "contry == \'ES\'"\nevery = "1d"\ngoal = "ordr"\n',
    )
    write(shop, "campaigns/broken.toml", 'name = "broken"\nsegment = "lost"\nchannel = 3\n')
    write(
        shop,
        "campaigns/notemplates.toml",
        'name = "notemplates"\nsegment = "lost"\nevery = "1d"\nchannel = ["push"]\n',
    )
    write(shop, "templates/winback/email.preheader.j2", "{{ customer.frist_name }}")
    result = run("validate", "--at", AT)
    assert result.exit_code == 2
    out = result.output
    assert "campaigns/typo.toml:2: 'segment': unknown segment 'lostt' — did you mean 'lost'?" in out
    assert "campaigns/rules.toml:2, column 1: unknown attribute 'contry'" in out
    assert (
        "campaigns/rules.toml:4: 'goal': unknown event type 'ordr' — did you mean 'order'?" in out
    )
    assert "campaigns/broken.toml:" in out
    assert "notemplates: push needs a body template" in out
    assert "templates/winback/email.preheader.j2:1:" in out and "frist_name" in out
    assert "Traceback" not in out


def test_validate_refuses_a_sandbox_escape(shop: Path) -> None:
    write(shop, "templates/winback/email.subject.j2", "{{ ''.__class__.__mro__ }}")
    result = run("validate", "--at", AT)
    assert result.exit_code == 2
    assert "templates/winback/email.subject.j2:1:" in result.output


def test_validate_a_single_file(shop: Path) -> None:
    write(shop, "campaigns/typo.toml", 'name = "typo"\nsegment = "lostt"\nevery = "1d"\n')
    result = run("validate", "campaigns/winback.toml", "--at", AT)
    assert result.exit_code == 0, result.output


def test_dry_run_shows_the_stages_and_samples_and_writes_nothing(shop: Path) -> None:
    result = run("dry-run", "winback", "--at", AT, "--limit", "2")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dry-run of winback as of 2026-12-01 12:00 UTC" in out
    for label in ("audience", "after consent", "after suppression", "after frequency cap"):
        assert label in out
    assert "holdout (control group)" in out and "local send hour:" in out
    assert out.count("\n--- ") == 2
    payload = json.loads(run("dry-run", "winback", "--at", AT, "--json").output)
    stages = payload["stages"]
    assert stages["audience"] >= stages["consent"] >= stages["frequency"] > 0
    assert payload["planned"] == sum(payload["channels"].values())
    store = Store("sqlite:///narrowcast.db")
    with store.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar_one() == 0
    store.dispose()


def test_dry_run_out_writes_an_email_a_mail_client_opens(shop: Path) -> None:
    result = run("dry-run", "winback", "--at", AT, "--limit", "1", "--out", "preview")
    assert result.exit_code == 0, result.output
    (eml,) = (shop / "preview").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Subject"].endswith("we miss you")
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/")
    kinds = [p.get_content_type() for p in message.iter_parts()]  # type: ignore[attr-defined]
    assert kinds == ["text/plain", "text/html"]
    summary = json.loads((shop / "preview" / "summary.json").read_text())
    assert summary["campaign"] == "winback"


def test_dry_run_explains_one_customer(shop: Path) -> None:
    ids = json.loads(run("segments", "show", "lost", "--at", AT, "--json").output)["customer_ids"]
    result = run("dry-run", "winback", "--at", AT, "--customer", ids[0])
    assert result.exit_code == 0, result.output
    assert f"customer {ids[0]}:" in result.output
    assert "audience" in result.output and "consent" in result.output
    outsider = run("dry-run", "winback", "--at", AT, "--customer", "nobody")
    assert "not in the audience" in outsider.output


def test_dry_run_explains_every_learned_decision(shop: Path) -> None:
    write(
        shop,
        "campaigns/learning.toml",
        """
        name = "learning"
        segment = "lost"
        every = "1d"
        channel = "auto"
        send_time = "auto"
        window = "09:00-20:00"
        goal = "order"
        [[variants]]
        name = "a"
        [[variants]]
        name = "b"
        """,
    )
    for variant in ("a", "b"):
        for part in ("email.subject.j2", "email.html.j2", "push.title.j2", "push.body.j2"):
            write(shop, f"templates/learning/{variant}/{part}", f"{variant} {part}")
    ids = json.loads(run("segments", "show", "lost", "--at", AT, "--json").output)["customer_ids"]
    result = run("dry-run", "learning", "--at", AT, "--customer", ids[0])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "learned hour" in out and "no results yet: the default hour" in out
    assert "no results yet: channel_order" in out
    assert "variant '" in out and "testing: a, b below 100 closed sends" in out
    summary = run("dry-run", "learning", "--at", AT)
    assert "learned:" in summary.output and "A/B (goal order): testing" in summary.output
    payload = json.loads(run("dry-run", "learning", "--at", AT, "--json").output)
    assert any(line.startswith("send time: no results yet") for line in payload["learned"])


def test_dry_run_of_an_unknown_campaign(shop: Path) -> None:
    result = run("dry-run", "winbak", "--at", AT)
    assert result.exit_code == 2
    assert "no campaign named 'winbak' — did you mean 'winback'?" in result.output


def test_campaigns_list(shop: Path) -> None:
    result = run("campaigns", "list", "--at", AT)
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()[:2]
    assert header.split()[:3] == ["campaign", "enabled", "schedule"]
    assert row.startswith("winback") and "cron 0 9 * * MON" in row
    assert "2026-12-07 08:00" in row  # the next Monday 09:00 in Madrid
    listed = json.loads(run("campaigns", "list", "--at", AT, "--json").output)
    assert listed[0]["audience"] > 0
    write(shop, "campaigns/bad.toml", 'name = "bad"\n')
    broken = run("campaigns", "list", "--at", AT)
    assert broken.exit_code == 2 and "bad.toml" in broken.output and "winback" in broken.output


def test_the_shipped_samples_validate(tmp_path: Path, demo_db: Path) -> None:
    """The campaigns and templates in the repository pass validate on a demo shop."""
    if not any((REPO / "campaigns").glob("*.toml")):
        pytest.skip("no sample campaigns yet")
    shutil.copy(demo_db, tmp_path / "narrowcast.db")
    (tmp_path / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "narrowcast.db"}"\n'
        f'[campaigns]\ndir = "{REPO / "campaigns"}"\ntemplates = "{REPO / "templates"}"\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "config.toml"), "validate", "--at", AT]
    )
    assert result.exit_code == 0, result.output
