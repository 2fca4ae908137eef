"""The FCM adapter: real firebase-admin against a fake FCM HTTP v1 server and token endpoint."""

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
    TransientError,
)
from narrowcast.channels.fcm import FcmChannel
from narrowcast.channels.settings import FcmSettings
from narrowcast.testing import Reply, Reset, Slow
from narrowcast.testing.fcm import FakeFcm

from .messages import NOW, push


@pytest.fixture
def fake() -> Iterator[FakeFcm]:
    with FakeFcm() as server:
        yield server


@pytest.fixture
def account(fake: FakeFcm, tmp_path: Path) -> Path:
    return fake.write_service_account(tmp_path / "service-account.json")


def channel(fake: FakeFcm, account: Path, **settings: object) -> FcmChannel:
    return FcmChannel(
        FcmSettings.model_validate(
            {"credentials_file": str(account), "base_url": fake.url, "timeout": 2.0, **settings}
        ),
        ChannelContext(clock=lambda: NOW),
    )


def send(
    fake: FakeFcm, account: Path, *batches: Sequence[Message], **settings: object
) -> list[Result]:
    adapter = channel(fake, account, **settings)

    async def go() -> list[Result]:
        results: list[Result] = []
        async with adapter:
            for batch in batches:
                results += await adapter.send(batch)
        return results

    return asyncio.run(go())


def sends(fake: FakeFcm) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("messages:send"))


def test_pushes_carry_the_outbox_id_as_collapse_key(fake: FakeFcm, account: Path) -> None:
    results = send(fake, account, [push(1), push(2)], [push(3)])
    assert [type(r) for r in results] == [Receipt] * 3
    assert all(
        isinstance(r, Receipt) and r.provider_id.startswith("projects/narrowcast-test/")
        for r in results
    )  # type: ignore[union-attr]
    by_id = {p.outbox_id: p.message for p in fake.delivered}
    assert sorted(by_id) == [1, 2, 3]
    message = by_id[2]
    assert message["token"] == push(2).to
    assert message["notification"] == {"title": "Your cart misses you", "body": "Come back, 2"}
    assert message["data"] == {
        "screen": "cart",
        "outbox_id": "2",
        "campaign": "cart-abandon",
        "link": "https://shop.example/cart",
    }
    assert message["android"]["collapse_key"] == "2"
    assert message["apns"]["headers"]["apns-collapse-id"] == "2"
    assert message["webpush"]["fcm_options"]["link"] == "https://shop.example/cart"
    assert fake.tokens_issued == 1  # one OAuth2 token for both batches
    assert fake.requests[0].path == "/token"


def test_expiry_becomes_ttl(fake: FakeFcm, account: Path) -> None:
    message = dataclasses.replace(push(1), expires_at=NOW.replace(hour=11, minute=30))
    send(fake, account, [message])
    pushed = fake.delivered[0].message
    assert pushed["android"]["ttl"] == "7200s"
    assert pushed["webpush"]["headers"]["TTL"] == "7200"


def test_an_unregistered_token_is_suppressed(fake: FakeFcm, account: Path) -> None:
    fake.unregistered.add(push(2).to)
    results = send(fake, account, [push(1), push(2), push(3)])
    assert isinstance(results[1], PermanentError) and results[1].suppress
    assert "UnregisteredError" in results[1].reason
    assert isinstance(results[0], Receipt) and isinstance(results[2], Receipt)


def test_a_malformed_token_is_suppressed(fake: FakeFcm, account: Path) -> None:
    [result] = send(fake, account, [push(1, token="bad token!")])
    assert isinstance(result, PermanentError) and result.suppress
    assert "not a valid FCM registration token" in result.reason


def test_a_bad_payload_is_permanent_but_keeps_the_token(fake: FakeFcm, account: Path) -> None:
    [result] = send(fake, account, [push(1, data={"from": "shop"})])
    assert isinstance(result, PermanentError) and not result.suppress
    assert "Invalid data key" in result.reason


def test_the_4096_byte_limit_is_checked_before_sending(fake: FakeFcm, account: Path) -> None:
    results = send(fake, account, [push(1, body="x" * 4100), push(2)])
    assert isinstance(results[0], PermanentError) and "4,096" in results[0].reason
    assert isinstance(results[1], Receipt)
    assert [p.outbox_id for p in fake.delivered] == [2]


def test_sender_id_mismatch_pauses_the_channel(fake: FakeFcm, account: Path) -> None:
    fake.mismatched.add(push(1).to)
    results = send(fake, account, [push(1), push(2, token="x" * 30)])
    assert all(isinstance(r, ChannelPaused | Receipt) for r in results)
    assert isinstance(results[0], ChannelPaused) and "SenderIdMismatchError" in results[0].reason


def test_third_party_auth_error_pauses_the_channel(fake: FakeFcm, account: Path) -> None:
    # firebase-admin refreshes the OAuth token and tries again on a 401: answer all of them.
    fake.script(Reply(401), times=3)
    [result] = send(fake, account, [push(1)])
    assert isinstance(result, ChannelPaused) and "ThirdPartyAuthError" in result.reason


def test_a_revoked_service_account_pauses_without_sending(fake: FakeFcm, account: Path) -> None:
    fake.revoked = True
    results = send(fake, account, [push(1), push(2)])
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert "invalid_grant" in results[0].reason  # type: ignore[union-attr]
    assert sends(fake) == 0


def test_quota_exceeded_honours_retry_after(fake: FakeFcm, account: Path) -> None:
    fake.script(Reply(429))
    [result] = send(fake, account, [push(1)])
    assert isinstance(result, TransientError) and result.retry_after == 30.0
    assert "QuotaExceededError" in result.reason


@pytest.mark.parametrize(("status", "error"), [(500, "InternalError"), (503, "UnavailableError")])
def test_server_errors_are_transient_and_not_retried(
    fake: FakeFcm, account: Path, status: int, error: str
) -> None:
    fake.script(Reply(status))
    [result] = send(fake, account, [push(1)])
    assert isinstance(result, TransientError) and error in result.reason
    assert sends(fake) == 1  # firebase-admin's own retries are off: the dispatcher retries


def test_a_timeout_is_transient_in_doubt(fake: FakeFcm, account: Path) -> None:
    fake.script(Slow(1.0))
    [result] = send(fake, account, [push(1)], timeout=0.3)
    assert isinstance(result, TransientError) and result.in_doubt


def test_a_connection_reset_is_transient(fake: FakeFcm, account: Path) -> None:
    fake.script(Reset())
    [result] = send(fake, account, [push(1)])
    assert isinstance(result, TransientError)


def test_dry_run_validates_only(fake: FakeFcm, account: Path) -> None:
    [result] = send(fake, account, [push(1)], dry_run=True)
    assert isinstance(result, Receipt)
    assert fake.delivered == [] and fake.accepted[0].validate_only


def test_credentials_are_required(fake: FakeFcm, tmp_path: Path) -> None:
    adapter = FcmChannel(FcmSettings(base_url=fake.url), ChannelContext())
    with pytest.raises(ChannelConfigError, match="credentials_file"):
        asyncio.run(adapter.open())
    missing = FcmChannel(
        FcmSettings(credentials_file=str(tmp_path / "nope.json")), ChannelContext()
    )
    with pytest.raises(ChannelConfigError, match="not a readable service-account file"):
        asyncio.run(missing.open())
