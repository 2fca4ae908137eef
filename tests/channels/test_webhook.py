"""The webhook adapter against a receiver on 127.0.0.1 that checks its signature."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest

from narrowcast.channels import (
    ChannelConfigError,
    ChannelContext,
    ChannelPaused,
    Message,
    PermanentError,
    Receipt,
    Result,
    TransientError,
)
from narrowcast.channels.settings import WebhookSettings
from narrowcast.channels.webhook import WebhookChannel, sign, verify_signature
from narrowcast.testing import FakeWebhookReceiver, Reply, Reset, Slow

from .messages import webhook

SECRET = "whsec-test"
ENV = {"HOOK_SECRET": SECRET}


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(SECRET) as fake:
        yield fake


def _channel(url: str, env: dict[str, str] = ENV, **settings: object) -> WebhookChannel:
    return WebhookChannel(
        WebhookSettings.model_validate(
            {"url": url, "secret_env": "HOOK_SECRET", "timeout": 0.5, **settings}
        ),
        ChannelContext(env=env),
    )


async def _send(channel: WebhookChannel, batch: Sequence[Message]) -> list[Result]:
    async with channel:
        return await channel.send(batch)


def send(url: str, batch: Sequence[Message], **settings: object) -> list[Result]:
    import asyncio

    return asyncio.run(_send(_channel(url, **settings), batch))


def test_signed_json_is_accepted(receiver: FakeWebhookReceiver) -> None:
    results = send(receiver.url + "/hooks/narrowcast", [webhook(1), webhook(2, tier="gold")])
    assert [r.outbox_id for r in results] == [1, 2]
    assert all(isinstance(r, Receipt) and r.provider_id for r in results)
    by_id = {d.outbox_id: d for d in receiver.accepted}
    assert by_id[2].body == {"event": "vip_entered", "customer": "c2", "tier": "gold"}
    assert by_id[1].idempotency_key == "narrowcast-1"
    assert receiver.requests[0].path == "/hooks/narrowcast"


def test_the_same_message_carries_the_same_idempotency_key(receiver: FakeWebhookReceiver) -> None:
    send(receiver.url, [webhook(9)])
    send(receiver.url, [webhook(9)])
    assert [d.idempotency_key for d in receiver.accepted] == ["narrowcast-9"] * 2


def test_a_wrong_secret_pauses_the_channel(receiver: FakeWebhookReceiver) -> None:
    batch = [webhook(i) for i in range(1, 11)]
    results = send(receiver.url, batch, env={"HOOK_SECRET": "wrong"}, concurrency=2)
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert "401" in results[0].reason and "HOOK_SECRET" in results[0].reason  # type: ignore[union-attr]
    assert receiver.accepted == []
    assert len(receiver.requests) <= 2  # the rest of the batch was not spent on it


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_client_errors_are_permanent(receiver: FakeWebhookReceiver, status: int) -> None:
    receiver.script(Reply(status, b"no such customer"))
    [result] = send(receiver.url, [webhook(1)])
    assert isinstance(result, PermanentError) and not result.suppress
    assert f"answered {status}: no such customer" in result.reason


def test_413_is_permanent(receiver: FakeWebhookReceiver) -> None:
    receiver.script(Reply(413))
    [result] = send(receiver.url, [webhook(1)])
    assert isinstance(result, PermanentError)


def test_429_honours_retry_after(receiver: FakeWebhookReceiver) -> None:
    receiver.script(Reply(429, headers={"Retry-After": "30"}))
    [result] = send(receiver.url, [webhook(1)])
    assert isinstance(result, TransientError) and result.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(receiver: FakeWebhookReceiver, status: int) -> None:
    receiver.script(Reply(status))
    results = send(receiver.url, [webhook(1), webhook(2)])
    # Only the first request to arrive was scripted to fail.
    assert sorted(type(r).__name__ for r in results) == ["Receipt", "TransientError"]
    assert not any(r.in_doubt for r in results if isinstance(r, TransientError))


def test_a_slow_receiver_times_out_in_doubt(receiver: FakeWebhookReceiver) -> None:
    receiver.script(Slow(1.5))
    [result] = send(receiver.url, [webhook(1)], timeout=0.3)
    assert isinstance(result, TransientError) and result.in_doubt
    assert "ReadTimeout" in result.reason


def test_a_connection_reset_is_transient(receiver: FakeWebhookReceiver) -> None:
    receiver.script(Reset())
    [result] = send(receiver.url, [webhook(1)])
    assert isinstance(result, TransientError)


def test_nobody_listening_is_transient_and_not_in_doubt() -> None:
    with FakeWebhookReceiver(SECRET) as fake:
        url = fake.url
    [result] = send(url, [webhook(1)])
    assert isinstance(result, TransientError) and not result.in_doubt
    assert "ConnectError" in result.reason


def test_a_body_that_is_not_json_fails_alone(receiver: FakeWebhookReceiver) -> None:
    results = send(receiver.url, [webhook(1, when=object()), webhook(2)])
    assert isinstance(results[0], PermanentError) and "not JSON" in results[0].reason
    assert isinstance(results[1], Receipt)


def test_a_missing_secret_names_the_key_and_variable(receiver: FakeWebhookReceiver) -> None:
    with pytest.raises(ChannelConfigError, match=r"channels\.providers\.webhook\.secret_env.*HOOK"):
        send(receiver.url, [webhook(1)], env={})


def test_no_url_is_a_config_error() -> None:
    channel = WebhookChannel(WebhookSettings(secret_env="HOOK_SECRET"), ChannelContext(env=ENV))
    with pytest.raises(ChannelConfigError, match="needs 'url'"):
        import asyncio

        asyncio.run(_send(channel, [webhook(1)]))


def test_signatures_expire_and_bind_the_body() -> None:
    now = int(time.time())
    good = sign(SECRET, now, b"{}")
    assert verify_signature(SECRET, b"{}", str(now), good, now=now)
    assert not verify_signature(SECRET, b"{ }", str(now), good, now=now)
    assert not verify_signature(SECRET, b"{}", str(now), good, now=now + 301)
    assert not verify_signature("other", b"{}", str(now), good, now=now)
    assert not verify_signature(SECRET, b"{}", None, good)
