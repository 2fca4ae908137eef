"""The ``file`` adapter: every message becomes a file in ``outbox/`` instead of being sent.

Like Django's file email backend, it lets the whole pipeline run — demo, tests,
a dry run of a new campaign — with no credentials: email becomes an RFC 5322
``.eml`` file you can open in any mail client (built by ``mime.build_email``,
exactly what the SMTP adapter would send), every other channel a ``.json``
file with the rendered parts.

Files are named after the outbox id (``outbox/email/42.eml``) and written
atomically (a temporary file renamed into place), so a resend after a crash
replaces the file instead of adding a second one.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from narrowcast.channels.base import KINDS, Channel, Message, Receipt, Result, check_batch
from narrowcast.channels.errors import ChannelConfigError, PermanentError, TransientError
from narrowcast.channels.mime import build_email
from narrowcast.channels.settings import FileSettings


class FileChannel(Channel[FileSettings]):
    """Write ``.eml`` (email) and ``.json`` (everything else) files, one per message."""

    name = "file"
    channels = frozenset(KINDS)
    settings_model = FileSettings
    max_batch = 1000

    @property
    def directory(self) -> Path:
        return self.context.path(self.settings.directory)

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ChannelConfigError(
                f"{self.context.config_file or 'config.toml'}: 'channels.providers.file.directory':"
                f" cannot create {self.directory}: {exc.strerror}"
            ) from exc

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        return await asyncio.to_thread(self._write_all, batch)

    def _write_all(self, batch: Sequence[Message]) -> list[Result]:
        return [self._write(message) for message in batch]

    def _write(self, message: Message) -> Result:
        try:
            folder = self.directory / _safe(message.channel)
            if message.channel == "email":
                if self.context.sender is None:
                    raise ValueError("no email sender is configured ([channels.email] sender)")
                content = bytes(
                    build_email(message, self.context.sender, date=self.context.clock())
                )
                suffix = ".eml"
            else:
                content = json.dumps(
                    _document(message), ensure_ascii=False, indent=2, default=_json_default
                ).encode()
                suffix = ".json"
        except (ValueError, TypeError) as exc:
            return PermanentError(
                f"cannot write {message.channel} message: {exc}", outbox_id=message.outbox_id
            )
        path = folder / f"{message.outbox_id}{suffix}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, content)
        except OSError as exc:
            return TransientError(
                f"cannot write {path}: {exc.strerror}", outbox_id=message.outbox_id
            )
        return Receipt(message.outbox_id, self.name, str(path.relative_to(self.directory)))


def _document(message: Message) -> dict[str, Any]:
    return {
        "outbox_id": message.outbox_id,
        "channel": message.channel,
        "customer_id": message.customer_id,
        "to": message.to,
        "campaign": message.campaign,
        "variant": message.variant,
        "locale": message.locale,
        "unsubscribe_url": message.unsubscribe_url,
        "expires_at": message.expires_at,
        "metadata": dict(message.metadata),
        "parts": dict(message.parts),
    }


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _safe(channel: str) -> str:
    if not channel or not all(c.isalnum() or c in "_-" for c in channel):
        raise ValueError(f"channel name {channel!r} cannot be a folder name")
    return channel


def _write_atomically(path: Path, content: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
