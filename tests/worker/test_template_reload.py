"""A running worker uses edited templates, and keeps the last good ones when an edit is broken."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from narrowcast.config import load_settings
from narrowcast.dispatch.clock import FixedClock
from narrowcast.store import Store
from narrowcast.testing import FakeSendGrid
from narrowcast.worker.worker import Worker
from tests.worker.conftest import KEY, Shop, write_shop


@pytest.fixture
def shop(sqlite_store: Store, tmp_path: Path, fake_sendgrid: FakeSendGrid) -> Shop:
    os.environ["SG_KEY"] = KEY
    return write_shop(tmp_path, sqlite_store, fake_sendgrid, 10)


def _subject(runner: Worker) -> str:
    message = runner.renderer.templates.message("blast", "email")
    (part,) = (compiled for part, compiled in message.parts if part.name == "subject")
    assert part is not None
    return str(part.template.render())


def _edit(path: Path, text: str, tick: int) -> None:
    path.write_text(text)
    stamp = path.stat().st_mtime + tick  # a later mtime even on a coarse-grained file system
    os.utime(path, (stamp, stamp))


def test_edited_templates_are_used_and_broken_edits_are_not(shop: Shop) -> None:
    settings = load_settings(shop.config)
    runner = Worker(settings, shop.store, clock=FixedClock(datetime.now(UTC)), root=shop.folder)
    subject = shop.folder / "templates" / "blast" / "email.subject.j2"
    assert _subject(runner) == "Our winter sale is on"

    _edit(subject, "The sale ends {{ 'tonight' }}", 10)
    runner.plan()
    assert _subject(runner) == "The sale ends tonight"
    assert runner.template_folder.problems == []

    _edit(subject, "The sale ends {% if %}", 20)  # half-saved: does not compile
    runner.plan()
    assert _subject(runner) == "The sale ends tonight", "the last good template stays"
    assert any("email.subject.j2" in problem for problem in runner.template_folder.problems)

    _edit(subject, "Last day of the sale", 30)
    runner.plan()
    assert _subject(runner) == "Last day of the sale"
    assert runner.template_folder.problems == []
