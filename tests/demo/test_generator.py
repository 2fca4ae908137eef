"""generate_demo: deterministic, idempotent, chunked; describe_store; the CLI command."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from narrowcast.cli import cli
from narrowcast.demo import describe_store, generate_demo, generator
from narrowcast.demo.behaviour import draw_customer
from narrowcast.store import Store
from narrowcast.store.schema import consents, customers, device_tokens, events

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


def _contents(store: Store) -> dict[str, list[Any]]:
    """Everything the demo writes, in a form that compares equal across databases."""
    with store.connect() as conn:
        return {
            "customers": [
                dict(row)
                for row in conn.execute(select(customers).order_by(customers.c.id)).mappings()
            ],
            "events": [
                tuple(row)
                for row in conn.execute(
                    select(
                        events.c.event_id,
                        events.c.customer_id,
                        events.c.type,
                        events.c.ts,
                        events.c.value,
                        events.c.properties,
                    ).order_by(events.c.event_id)
                )
            ],
            "consents": [
                tuple(row)
                for row in conn.execute(
                    select(consents).order_by(consents.c.customer_id, consents.c.channel)
                )
            ],
            "tokens": [
                tuple(row)
                for row in conn.execute(
                    select(
                        device_tokens.c.customer_id,
                        device_tokens.c.platform,
                        device_tokens.c.token,
                        device_tokens.c.created_at,
                        device_tokens.c.last_seen_at,
                        device_tokens.c.invalidated_at,
                    ).order_by(device_tokens.c.token)
                )
            ],
        }


def _fresh_sqlite(template: Path, folder: Path) -> Store:
    folder.mkdir()
    shutil.copy(template, folder / "d.db")
    return Store(f"sqlite:///{folder / 'd.db'}")


def test_same_seed_and_now_give_the_same_shop(
    store: Store, sqlite_template: Path, tmp_path: Path
) -> None:
    generate_demo(store, customers=120, seed=5, now=NOW)
    other = _fresh_sqlite(sqlite_template, tmp_path / "other")
    try:
        generate_demo(other, customers=120, seed=5, now=NOW)
        # On PostgreSQL this also shows both databases store exactly the same values.
        assert _contents(store) == _contents(other)
    finally:
        other.dispose()


def test_another_seed_gives_another_shop(
    sqlite_store: Store, sqlite_template: Path, tmp_path: Path
) -> None:
    generate_demo(sqlite_store, customers=50, seed=1, now=NOW)
    other = _fresh_sqlite(sqlite_template, tmp_path / "other")
    try:
        generate_demo(other, customers=50, seed=2, now=NOW)
        first, second = _contents(sqlite_store), _contents(other)
    finally:
        other.dispose()
    assert [c["id"] for c in first["customers"]] == [c["id"] for c in second["customers"]]
    emails = {c["email"] for c in first["customers"]} & {c["email"] for c in second["customers"]}
    assert len(emails) < 5
    assert first["events"] != second["events"]


def test_running_twice_changes_nothing(store: Store) -> None:
    first = generate_demo(store, customers=80, seed=3, now=NOW)
    before = _contents(store)
    second = generate_demo(store, customers=80, seed=3, now=NOW)
    assert _contents(store) == before
    assert first.new_events == first.events > 0
    assert second.events == first.events and second.new_events == 0
    assert "already stored" in second.summary()


def test_chunks_are_committed_one_by_one_and_drawn_like_single_customers(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so a few hundred customers take the multi-chunk path (worker processes).
    monkeypatch.setattr(generator, "CHUNK", 100)
    done: list[int] = []
    report = generate_demo(sqlite_store, customers=250, seed=9, now=NOW, on_customers=done.append)
    assert done == [100, 100, 50]
    assert report.customers == 250 == sum(report.personas.values())
    with sqlite_store.connect() as conn:
        ids = conn.scalars(select(customers.c.id).order_by(customers.c.id)).all()
        assert ids == [f"demo-{n:06d}" for n in range(1, 251)]
        assert conn.scalar(select(func.count()).select_from(events)) == report.events
        # A customer from the last chunk is the one drawn alone.
        stored = conn.execute(select(customers).where(customers.c.id == "demo-000234")).one()
        stored_events = conn.scalar(
            select(func.count()).where(events.c.customer_id == "demo-000234")
        )
    alone = draw_customer(9, 234, NOW)
    assert {key: getattr(stored, key) for key in alone.row} == alone.row
    assert stored_events == len(alone.events)


def test_naive_now_is_refused(sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        generate_demo(sqlite_store, customers=1, seed=1, now=datetime(2026, 1, 1))


def test_describe_store_counts_what_is_there(store: Store) -> None:
    report = generate_demo(store, customers=200, seed=4, now=NOW)
    text = describe_store(store, NOW)
    assert text.startswith(f"200 customers, {report.events:,} events")
    with store.connect() as conn:
        spain = conn.scalar(select(func.count()).where(customers.c.country == "ES"))
        orders = conn.scalar(select(func.count()).where(events.c.type == "order"))
    lines = text.splitlines()
    assert any(line.split()[:2] == ["ES", f"{spain:,}"] for line in lines)
    assert any(line.split()[:2] == ["order", f"{orders:,}"] for line in lines)
    assert any(line.split()[:2] == ["email", "marketing"] for line in lines)
    assert "individual" in text and "last 30 days" in text


def test_describe_store_on_an_empty_store(sqlite_store: Store) -> None:
    text = describe_store(sqlite_store, NOW)
    assert text.startswith("0 customers, 0 events")
    assert "(none)" in text


def test_demo_command(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/d.db"\n')
    runner = CliRunner()
    args = [
        "--config",
        str(config),
        "demo",
        "--customers",
        "300",
        "--seed",
        "1",
        "--at",
        "2026-01-15",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "demo shop (seed 1, as of 2026-01-15 00:00 UTC): 300 customers" in result.output
    assert "personas: vip" in result.output
    assert "300 customers," in result.output and "country" in result.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "already stored" in again.output
