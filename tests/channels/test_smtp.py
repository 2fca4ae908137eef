"""The SMTP adapter against aiosmtpd on 127.0.0.1: TLS, AUTH, pooling and every reply class."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from narrowcast.channels import (
    ChannelContext,
    ChannelPaused,
    Message,
    PermanentError,
    Receipt,
    Result,
    Sender,
    TransientError,
)
from narrowcast.channels.settings import SmtpSettings
from narrowcast.channels.smtp import SmtpChannel

from .conftest import Relay, free_port
from .messages import NOW, email

SENDER = Sender.parse("Example Shop <news@shop.example>")


def send(
    relay_port: int, batch: Sequence[Message], env: dict[str, str] | None = None, **settings: object
) -> list[Result]:
    channel = SmtpChannel(
        SmtpSettings.model_validate(
            {"host": "127.0.0.1", "port": relay_port, "tls": "none", "timeout": 5, **settings}
        ),
        ChannelContext(env=env or {}, sender=SENDER, clock=lambda: NOW),
    )

    async def go() -> list[Result]:
        async with channel:
            return await channel.send(batch)

    return asyncio.run(go())


def test_the_relay_gets_a_complete_multipart_message(relay: Relay) -> None:
    results = send(relay.port, [email(1), email(2, to="Bo <bo@example.com>")])
    assert [type(r) for r in results] == [Receipt, Receipt]
    assert {r.provider_id for r in results if isinstance(r, Receipt)} == {"Q00001", "Q00002"}
    by_rcpt = {r.rcpt_tos[0]: r for r in relay.received}
    got = by_rcpt["bo@example.com"]
    assert got.mail_from == "news@shop.example"
    message = got.message
    assert message["To"] == "Bo <bo@example.com>"
    assert message["Subject"] == "Spring sale for you, #2"
    assert message["List-Unsubscribe"] == "<https://shop.example/u/tok2>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].startswith("<nc.2.")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_connections_are_pooled(relay: Relay) -> None:
    results = send(
        relay.port, [email(i, to=f"u{i}@example.com") for i in range(1, 13)], connections=2
    )
    assert all(isinstance(r, Receipt) for r in results)
    assert len(relay.received) == 12
    assert len(relay.peers) <= 2


def test_starttls_and_auth(starttls_relay: Relay, tls_files: tuple[Path, Path]) -> None:
    [result] = send(
        starttls_relay.port,
        [email(1)],
        env={"SMTP_PASSWORD": "s3cret"},
        tls="starttls",
        ca_file=str(tls_files[0]),
        username="shop",
        password_env="SMTP_PASSWORD",
    )
    assert isinstance(result, Receipt)
    assert starttls_relay.received[0].rcpt_tos == ["ana@example.com"]


def test_a_refused_login_pauses_the_channel(
    starttls_relay: Relay, tls_files: tuple[Path, Path]
) -> None:
    results = send(
        starttls_relay.port,
        [email(1), email(2), email(3)],
        env={"SMTP_PASSWORD": "wrong"},
        tls="starttls",
        ca_file=str(tls_files[0]),
        username="shop",
        password_env="SMTP_PASSWORD",
    )
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert "SMTP_PASSWORD" in results[0].reason  # type: ignore[union-attr]
    assert starttls_relay.received == []


def test_starttls_required_but_not_offered_pauses(relay: Relay) -> None:
    [result] = send(relay.port, [email(1)], tls="starttls")
    assert isinstance(result, ChannelPaused) and "TLS" in result.reason
    assert relay.received == []


def test_implicit_tls(implicit_tls_relay: Relay, tls_files: tuple[Path, Path]) -> None:
    [result] = send(implicit_tls_relay.port, [email(1)], tls="implicit", ca_file=str(tls_files[0]))
    assert isinstance(result, Receipt)


def test_an_untrusted_certificate_pauses(implicit_tls_relay: Relay) -> None:
    [result] = send(implicit_tls_relay.port, [email(1)], tls="implicit")
    assert isinstance(result, (ChannelPaused, TransientError))
    assert implicit_tls_relay.received == []


@pytest.mark.parametrize(
    ("reply", "kind", "suppress"),
    [
        ("550 5.1.1 <x>: Recipient address rejected: User unknown", PermanentError, True),
        ("553 5.1.3 Bad recipient address syntax", PermanentError, True),
        ("550 5.7.1 Message rejected as spam", PermanentError, False),
        ("552 5.2.2 Mailbox full", PermanentError, False),
        ("450 4.2.0 Mailbox temporarily unavailable", TransientError, None),
        ("451 4.3.0 Try again later", TransientError, None),
    ],
)
def test_recipient_replies(relay: Relay, reply: str, kind: type, suppress: bool | None) -> None:
    relay.refuse_rcpt["ana@example.com"] = reply
    results = send(relay.port, [email(1), email(2, to="bo@example.com")])
    assert isinstance(results[0], kind)
    if suppress is not None:
        assert results[0].suppress is suppress  # type: ignore[union-attr]
    assert reply.split()[0] in results[0].reason  # type: ignore[union-attr]
    assert isinstance(results[1], Receipt)


def test_data_refused_is_permanent(relay: Relay) -> None:
    relay.refuse_data = "554 5.6.0 Message content rejected"
    [result] = send(relay.port, [email(1)])
    assert isinstance(result, PermanentError) and not result.suppress


def test_our_sender_refused_pauses(relay: Relay) -> None:
    relay.refuse_mail = "553 5.7.1 Sender address rejected: not owned by user"
    results = send(relay.port, [email(1), email(2)])
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert "sender" in results[0].reason  # type: ignore[union-attr]


def test_nobody_listening_is_transient() -> None:
    [result] = send(free_port(), [email(1)])
    assert isinstance(result, TransientError) and not result.in_doubt


def test_a_bad_message_fails_alone(relay: Relay) -> None:
    results = send(relay.port, [email(1, to="nobody"), email(2, html="")])
    assert isinstance(results[0], PermanentError) and results[0].suppress
    assert isinstance(results[1], PermanentError) and not results[1].suppress
    assert relay.received == []
