"""The SendGrid adapter against a fake v3 Mail Send that validates requests as SendGrid does."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from narrowcast.channels import (
    ChannelConfigError,
    ChannelContext,
    ChannelPaused,
    Message,
    PermanentError,
    Receipt,
    Result,
    Sender,
    TransientError,
    build_routes,
)
from narrowcast.channels.sendgrid import SendGridChannel
from narrowcast.channels.settings import SendGridSettings
from narrowcast.config import load_settings
from narrowcast.testing import FakeSendGrid, Reply, Reset, Slow

from .messages import NOW, email

KEY = "SG.test-key"
SENDER = Sender.parse("Example Shop <news@shop.example>", reply_to="help@shop.example")


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY, forbidden_keys=("SG.read-only",)) as server:
        yield server


def send(
    fake: FakeSendGrid,
    batch: Sequence[Message],
    *,
    key: str = KEY,
    sender: Sender = SENDER,
    **settings: object,
) -> list[Result]:
    channel = SendGridChannel(
        SendGridSettings.model_validate({"base_url": fake.url, "timeout": 2.0, **settings}),
        ChannelContext(env={"SENDGRID_API_KEY": key}, sender=sender, clock=lambda: NOW),
    )

    async def go() -> list[Result]:
        async with channel:
            return await channel.send(batch)

    return asyncio.run(go())


def same_content(message: Message) -> Message:
    return dataclasses.replace(
        message, parts={"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}, unsubscribe_url=None
    )


def test_each_personalised_message_is_sent_with_its_correlation_data(fake: FakeSendGrid) -> None:
    results = send(fake, [email(1), email(2, to="Bo <bo@example.com>"), email(3)])
    assert [type(r) for r in results] == [Receipt] * 3
    assert [r.outbox_id for r in results] == [1, 2, 3]
    assert sorted(fake.outbox_ids) == [1, 2, 3]
    by_id = {a.outbox_ids[0]: a for a in fake.accepted}
    assert {r.provider_id for r in results} == {a.message_id for a in fake.accepted}
    body = by_id[2].body
    [personalization] = body["personalizations"]
    assert personalization["to"] == [{"email": "bo@example.com", "name": "Bo"}]
    assert personalization["custom_args"] == {
        "run": "r1",
        "outbox_id": "2",
        "campaign": "spring-sale",
        "variant": "b",
    }
    assert personalization["headers"] == {
        "List-Unsubscribe": "<https://shop.example/u/tok2>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert body["from"] == {"email": "news@shop.example", "name": "Example Shop"}
    assert body["reply_to"] == {"email": "help@shop.example"}
    assert body["subject"] == "Spring sale for you, #2"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "Up to 40% off until Sunday" in body["content"][1]["value"]  # the hidden preheader
    assert body["categories"] == ["spring-sale", "spring-sale:b"]
    assert "mail_settings" not in body and "asm" not in body


def test_identical_content_shares_one_request_of_up_to_1000(fake: FakeSendGrid) -> None:
    batch = [same_content(email(i, to=f"u{i}@example.com")) for i in range(1, 1001)]
    results = send(fake, batch)
    assert len(fake.accepted) == 1
    assert fake.outbox_ids == list(range(1, 1001))
    assert {r.provider_id for r in results} == {fake.accepted[0].message_id}


def test_asm_group_sandbox_and_extra_categories(fake: FakeSendGrid) -> None:
    [result] = send(fake, [email(1)], asm_group_id=42, sandbox_mode=True, categories=["spring"])
    assert isinstance(result, Receipt)
    [accepted] = fake.accepted
    assert accepted.sandbox and fake.outbox_ids == []
    assert accepted.body["asm"] == {"group_id": 42}
    assert accepted.body["categories"] == ["spring-sale", "spring-sale:b", "spring"]


def test_a_malformed_address_is_suppressed_without_a_request(fake: FakeSendGrid) -> None:
    results = send(fake, [email(1, to="nobody"), email(2)])
    assert isinstance(results[0], PermanentError) and results[0].suppress
    assert isinstance(results[1], Receipt)
    assert fake.outbox_ids == [2] and len(fake.requests) == 1


def test_custom_args_over_10000_bytes_are_refused_before_sending(fake: FakeSendGrid) -> None:
    big = dataclasses.replace(email(1), metadata={"note": "x" * 10_000})
    [result] = send(fake, [big])
    assert isinstance(result, PermanentError) and "10,000" in result.reason
    assert fake.requests == []


def test_400_is_permanent_with_sendgrids_field_errors(fake: FakeSendGrid) -> None:
    # Our parser takes a dot-less domain; SendGrid does not.
    results = send(fake, [email(1), email(2)], sender=Sender.parse("shop@localhost"))
    assert all(isinstance(r, PermanentError) and not r.suppress for r in results)
    assert (
        "sendgrid answered 400: from.email: The from object must be provided" in results[0].reason
    )


def test_400_for_one_recipient_fails_only_that_message(fake: FakeSendGrid) -> None:
    batch = [same_content(email(i, to=f"u{i}@example.com")) for i in range(1, 4)]
    batch[1] = dataclasses.replace(batch[1], to="u2@example")
    results = send(fake, batch)
    assert isinstance(results[1], PermanentError) and results[1].suppress
    assert "personalizations.1.to.0.email: Does not contain a valid address" in results[1].reason
    assert isinstance(results[0], TransientError) and isinstance(results[2], TransientError)
    assert fake.accepted == []


@pytest.mark.parametrize("key", ["SG.revoked", "SG.read-only"], ids=["401", "403"])
def test_a_refused_key_pauses_the_channel_without_burning_the_batch(
    fake: FakeSendGrid, key: str
) -> None:
    results = send(fake, [email(i) for i in range(1, 11)], key=key, concurrency=2)
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert [r.outbox_id for r in results] == list(range(1, 11))
    assert "SENDGRID_API_KEY" in results[0].reason  # type: ignore[union-attr]
    assert len(fake.requests) <= 2  # the rest of the batch was never sent
    assert fake.accepted == []


def test_413_is_permanent(fake: FakeSendGrid) -> None:
    fake.script(Reply(413))
    [result] = send(fake, [email(1)])
    assert isinstance(result, PermanentError) and "413" in result.reason


def test_429_retries_when_the_rate_limit_resets(fake: FakeSendGrid) -> None:
    reset = int(NOW.timestamp()) + 42
    fake.script(Reply(429, headers={"X-RateLimit-Reset": str(reset)}))
    [result] = send(fake, [email(1)])
    assert isinstance(result, TransientError) and result.retry_after == 42.0
    assert "too many requests" in result.reason


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(fake: FakeSendGrid, status: int) -> None:
    fake.script(Reply(status))
    [result] = send(fake, [email(1)])
    assert isinstance(result, TransientError) and not result.in_doubt


def test_a_timeout_is_transient_and_in_doubt(fake: FakeSendGrid) -> None:
    fake.script(Slow(1.0))
    [result] = send(fake, [email(1)], timeout=0.2)
    assert isinstance(result, TransientError) and result.in_doubt


def test_a_connection_reset_is_transient(fake: FakeSendGrid) -> None:
    fake.script(Reset())
    [result] = send(fake, [email(1)])
    assert isinstance(result, TransientError)


def test_a_missing_key_variable_is_named() -> None:
    with FakeSendGrid() as fake:
        channel = SendGridChannel(SendGridSettings(base_url=fake.url), ChannelContext(env={}))
        with pytest.raises(ChannelConfigError, match=r"api_key_env.*SENDGRID_API_KEY"):
            asyncio.run(channel.open())


def test_switching_email_to_sendgrid_is_config_alone(fake: FakeSendGrid, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[channels.email]\nprovider = "sendgrid"\nsender = "Shop <news@shop.example>"\n'
        f'[channels.providers.sendgrid]\napi_key_env = "SG_KEY"\nbase_url = "{fake.url}"\n'
    )
    settings = load_settings(config, env={})
    routes = build_routes(
        settings.channels, ChannelContext(env={"SG_KEY": KEY}, config_file=config), only="email"
    )

    async def go() -> list[Result]:
        async with routes:
            return await routes["email"].send([email(5)])

    [result] = asyncio.run(go())
    assert isinstance(result, Receipt) and result.provider == "sendgrid"
    assert fake.outbox_ids == [5]
