"""The file adapter: .eml and .json files in outbox/, one per outbox id, replaced on resend."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

from narrowcast.channels import ChannelContext, PermanentError, Receipt, Sender, TransientError
from narrowcast.channels.file import FileChannel
from narrowcast.channels.settings import FileSettings

from .messages import NOW, email, push, run, web, webhook


def _channel(tmp_path: Path, directory: str = "outbox") -> FileChannel:
    context = ChannelContext(
        sender=Sender.parse("Shop <news@shop.example>"), root=tmp_path, clock=lambda: NOW
    )
    return FileChannel(FileSettings(directory=directory), context)


async def _send(channel: FileChannel, batch: list) -> list:  # type: ignore[type-arg]
    async with channel:
        return await channel.send(batch)


def test_email_becomes_an_eml_file_and_the_rest_json(tmp_path: Path) -> None:
    results = run(_send(_channel(tmp_path), [email(1), push(2), web(3), webhook(4)]))
    assert results == [
        Receipt(1, "file", "email/1.eml"),
        Receipt(2, "file", "push/2.json"),
        Receipt(3, "file", "web/3.json"),
        Receipt(4, "file", "webhook/4.json"),
    ]
    outbox = tmp_path / "outbox"
    parsed = message_from_bytes((outbox / "email/1.eml").read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Spring sale for you, #1"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    document = json.loads((outbox / "web/3.json").read_text())
    assert document["parts"]["targeting"]["referrer"] == ["search"]
    assert document["expires_at"] == "2026-03-05T09:30:00+00:00"
    assert json.loads((outbox / "webhook/4.json").read_text())["parts"]["body"]["customer"] == "c4"


def test_a_resend_replaces_the_file(tmp_path: Path) -> None:
    channel = _channel(tmp_path)
    run(_send(channel, [push(5, title="first")]))
    run(_send(channel, [push(5, title="second")]))
    files = sorted(p.name for p in (tmp_path / "outbox/push").iterdir())
    assert files == ["5.json"]
    assert json.loads((tmp_path / "outbox/push/5.json").read_text())["parts"]["title"] == "second"


def test_a_bad_message_fails_alone(tmp_path: Path) -> None:
    results = run(_send(_channel(tmp_path), [email(1, subject=""), email(2)]))
    assert isinstance(results[0], PermanentError) and "'subject'" in results[0].reason
    assert results[1] == Receipt(2, "file", "email/2.eml")


def test_an_unwritable_folder_is_transient(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "push").write_text("a file where the folder should be")
    results = run(_send(_channel(tmp_path), [push(1), email(2)]))
    assert isinstance(results[0], TransientError) and "push/1.json" in results[0].reason
    assert isinstance(results[1], Receipt)
