"""The ``smtp`` adapter: email through your own relay (Postfix, Haraka, a provider's SMTP).

The message is ``mime.build_email`` — the same bytes the file adapter writes —
sent with aiosmtplib over a small pool of open connections (``connections``),
each carrying one message at a time, one transaction per recipient so a
refusal belongs to exactly one outbox row. TLS is STARTTLS (port 587, the
default), implicit TLS (465) or none (25, for a relay on localhost), with
optional AUTH; a private CA is named with ``ca_file``.

Reply codes (RFC 5321 §4.2, enhanced codes RFC 3463):

* 2xx → receipt; the relay's queue id ("queued as …") is the provider id;
* 4xx → transient;
* 5xx → permanent; 550 / 551 / 553 and every 5.1.x enhanced code (bad
  mailbox, bad domain) also suppress the address — but 5.7.x (policy, spam
  filter) does not, since the address itself may be fine;
* the relay refusing our login (535), our sender (5xx to MAIL FROM), or not
  offering the STARTTLS we require → ``ChannelPaused``: an operator must fix
  the settings, and no message is to blame;
* a timeout or a dropped connection after the data was sent → transient and
  in doubt (the relay may have queued it).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Sequence

import aiosmtplib

from narrowcast.channels.base import Channel, ChannelContext, Message, Receipt, Result, check_batch
from narrowcast.channels.errors import (
    ChannelConfigError,
    ChannelPaused,
    PermanentError,
    TransientError,
)
from narrowcast.channels.mime import Sender, build_email
from narrowcast.channels.settings import SmtpSettings

_QUEUE_ID = re.compile(r"queued as ([^\s;]+)", re.IGNORECASE)
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_SUPPRESS_CODES = {550, 551, 553}
# Reuse an idle connection only after a NOOP: relays drop idle clients after a few minutes.
_IDLE_CHECK_SECONDS = 30.0


class _Paused(Exception):
    """Settings the relay refuses; every message of the batch waits."""


class SmtpChannel(Channel[SmtpSettings]):
    """Email through an SMTP relay, over a pool of open connections."""

    name = "smtp"
    channels = frozenset({"email"})
    settings_model = SmtpSettings

    def __init__(self, settings: SmtpSettings, context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.max_batch = settings.max_batch
        self._password: str | None = None
        self._tls: ssl.SSLContext | None = None
        self._idle: asyncio.Queue[tuple[aiosmtplib.SMTP | None, float]] | None = None

    @property
    def sender(self) -> Sender:
        if self.context.sender is None:
            raise ChannelConfigError("smtp needs a sender: set [channels.email] sender")
        return self.context.sender

    async def open(self) -> None:
        settings = self.settings
        if settings.password_env is not None:
            self._password = self.context.secret(
                "channels.providers.smtp.password_env", settings.password_env
            )
        if settings.tls != "none":
            context = ssl.create_default_context()
            if settings.ca_file:
                context.load_verify_locations(cafile=str(self.context.path(settings.ca_file)))
            if not settings.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(settings.connections):
                self._idle.put_nowait((None, 0.0))

    async def close(self) -> None:
        if self._idle is None:
            return
        while not self._idle.empty():
            connection, _ = self._idle.get_nowait()
            if connection is not None and connection.is_connected:
                try:
                    await connection.quit()
                except aiosmtplib.SMTPException:
                    connection.close()
        self._idle = None

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        check_batch(self, batch)
        if self._idle is None:
            raise RuntimeError("SmtpChannel.send before open()")
        paused: list[str] = []
        results = await asyncio.gather(*(self._deliver(m, paused) for m in batch))
        if paused:
            return [
                r
                if isinstance(r, Receipt | PermanentError)
                else ChannelPaused(paused[0], outbox_id=r.outbox_id)
                for r in results
            ]
        return list(results)

    async def _deliver(self, message: Message, paused: list[str]) -> Result:
        try:
            email = build_email(message, self.sender, date=self.context.clock())
        except ValueError as exc:
            return PermanentError(
                f"smtp: {exc}",
                outbox_id=message.outbox_id,
                suppress="not an email address" in str(exc),
            )
        assert self._idle is not None
        idle = self._idle
        connection, last_used = await idle.get()
        try:
            if paused:
                return ChannelPaused(paused[0], outbox_id=message.outbox_id)
            connection = await self._ready(connection, last_used)
            _, reply = await connection.send_message(
                email, sender=self.sender.address, recipients=[email["To"].addresses[0].addr_spec]
            )
            match = _QUEUE_ID.search(reply)
            return Receipt(message.outbox_id, self.name, match.group(1) if match else None)
        except _Paused as exc:
            paused.append(str(exc))
            _drop(connection)
            connection = None
            return ChannelPaused(str(exc), outbox_id=message.outbox_id)
        except aiosmtplib.SMTPSenderRefused as exc:
            if exc.code >= 500:
                reason = (
                    f"smtp relay refused our sender {exc.sender}: {exc.code} {exc.message} — "
                    "check [channels.email] sender and the relay's sender policy"
                )
                paused.append(reason)
                return ChannelPaused(reason, outbox_id=message.outbox_id)
            return _by_code(exc.code, exc.message, message.outbox_id)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return _by_code(refused.code, refused.message, message.outbox_id)
        except aiosmtplib.SMTPResponseException as exc:  # DATA refused, and the like
            return _by_code(exc.code, exc.message, message.outbox_id)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPReadTimeoutError) as exc:
            _drop(connection)
            connection = None
            return TransientError(
                f"smtp: {type(exc).__name__}: {exc} (the relay may have queued the message)",
                outbox_id=message.outbox_id,
                in_doubt=True,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            _drop(connection)
            connection = None
            return TransientError(f"smtp: {type(exc).__name__}: {exc}", outbox_id=message.outbox_id)
        finally:
            idle.put_nowait((connection, time.monotonic()))

    async def _ready(self, connection: aiosmtplib.SMTP | None, last_used: float) -> aiosmtplib.SMTP:
        """A connected, logged-in client: the pooled one if it still answers, else a new one."""
        if connection is not None and connection.is_connected:
            if time.monotonic() - last_used < _IDLE_CHECK_SECONDS:
                return connection
            try:
                await connection.noop()
                return connection
            except aiosmtplib.SMTPException:
                connection.close()
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            username=settings.username,
            password=self._password,
            use_tls=settings.tls == "implicit",
            start_tls=True if settings.tls == "starttls" else False,
            tls_context=self._tls,
            timeout=settings.timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise _Paused(
                f"smtp relay {settings.host} refused the login of {settings.username}: "
                f"{exc.code} {exc.message} — check channels.providers.smtp.password_env "
                f"({settings.password_env})"
            ) from exc
        except aiosmtplib.SMTPException as exc:
            client.close()
            if "STARTTLS" in str(exc) or isinstance(exc.__cause__, ssl.SSLError):
                raise _Paused(
                    f"smtp relay {settings.host}:{settings.effective_port}: TLS failed — {exc}; "
                    "check channels.providers.smtp.tls / ca_file"
                ) from exc
            raise
        return client


def _drop(connection: aiosmtplib.SMTP | None) -> None:
    if connection is not None:
        connection.close()
    return None


def _by_code(code: int, text: str, outbox_id: int) -> Result:
    said = f"smtp relay answered {code} {' '.join(text.split())}"
    if 400 <= code < 500:
        return TransientError(said, outbox_id=outbox_id)
    enhanced = _ENHANCED.match(text)
    subject = enhanced.group(2) if enhanced else None
    suppress = subject == "1" or (code in _SUPPRESS_CODES and subject != "7")
    return PermanentError(said, outbox_id=outbox_id, suppress=suppress)
