"""``narrowcast channels list`` and ``narrowcast channels test`` through click's runner."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from narrowcast.cli import cli
from narrowcast.store import Store
from narrowcast.store.schema import customers, device_tokens

from .messages import NOW


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NARROWCAST_CONFIG", raising=False)
    monkeypatch.delenv("NARROWCAST_DATABASE_URL", raising=False)
    store = Store(f"sqlite:///{tmp_path / 'narrowcast.db'}")
    store.upgrade()
    with store.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {
                    "id": "c1",
                    "email": "ana@example.com",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "attributes": {},
                },
            ],
        )
        conn.execute(
            insert(device_tokens),
            [
                {
                    "customer_id": "c1",
                    "platform": "android",
                    "token": "t" * 40,
                    "created_at": NOW,
                    "last_seen_at": NOW,
                }
            ],
        )
    store.dispose()
    return tmp_path


def test_list_shows_every_builtin_adapter_and_the_routes(shop: Path) -> None:
    result = CliRunner().invoke(cli, ["channels", "list"])
    assert result.exit_code == 0, result.output
    for name in ("file", "sendgrid", "smtp", "fcm", "inapp", "web", "webhook"):
        assert name in result.output
    assert "email: file" in result.output and "in_app: inapp" in result.output


def test_list_marks_failover_and_missing_providers(shop: Path) -> None:
    (shop / "config.toml").write_text('[channels.email]\nprovider = ["sendgrid", "smtp"]\n')
    result = CliRunner().invoke(cli, ["channels", "list"])
    assert result.exit_code == 0, result.output
    assert "email: sendgrid → smtp" in result.output
    assert "email (failover)" in result.output


@pytest.mark.parametrize(("kind", "suffix"), [("email", ".eml"), ("push", ".json")])
def test_test_sends_through_the_default_file_adapter(shop: Path, kind: str, suffix: str) -> None:
    result = CliRunner().invoke(cli, ["channels", "test", kind, "--to", "c1"])
    assert result.exit_code == 0, result.output
    assert "accepted by file" in result.output
    [written] = list((shop / "outbox" / kind).iterdir())
    assert written.suffix == suffix and written.stem.startswith("-")  # negative test outbox id
    if kind == "email":
        parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
        assert parsed["To"] == "ana@example.com"


def test_test_in_app_writes_the_inbox(shop: Path) -> None:
    result = CliRunner().invoke(cli, ["channels", "test", "in_app", "--to", "c1"])
    assert result.exit_code == 0, result.output
    assert "accepted by inapp" in result.output


def test_test_reports_a_failure_with_an_exit_code(shop: Path) -> None:
    (shop / "config.toml").write_text(
        '[channels.webhook]\nprovider = "webhook"\n'
        '[channels.providers.webhook]\nurl = "http://127.0.0.1:9/"\nsecret_env = "HOOK"\n'
    )
    result = CliRunner(env={"HOOK": "s"}).invoke(cli, ["channels", "test", "webhook", "--to", "c1"])
    assert result.exit_code == 5
    assert "TransientError" in result.output and "not accepted" in result.output


def test_test_an_unknown_customer(shop: Path) -> None:
    result = CliRunner().invoke(cli, ["channels", "test", "email", "--to", "nobody"])
    assert result.exit_code == 5 and "'nobody' is not in the store" in result.output
