"""The SMS plugin passes narrowcast's adapter contract from outside the core."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from narrowcast_sms import SmsChannel, SmsSettings
from narrowcast_sms.testing import FakeSmsGateway

from narrowcast.channels import (
    Channel,
    ChannelContext,
    Message,
    PermanentError,
    Receipt,
    build_routes,
)
from narrowcast.config import load_settings
from narrowcast.testing import ChannelContract, FakeServer


def text(outbox_id: int, to: str = "+34600000001") -> Message:
    return Message(
        outbox_id=outbox_id,
        channel="sms",
        customer_id=f"c{outbox_id}",
        to=to,
        parts={"text": f"Your order {outbox_id} has shipped"},
        campaign="shipping",
    )


class TestSmsContract(ChannelContract):
    entry_point = "sms"

    def make_fake(self) -> FakeServer:
        return FakeSmsGateway(api_key="k")

    def make_channel(self, fake: FakeServer, *, timeout: float) -> Channel[Any]:
        return SmsChannel(
            SmsSettings(base_url=fake.url, timeout=timeout),
            ChannelContext(env={"SMS_API_KEY": "k"}),
        )

    def make_message(self, outbox_id: int) -> Message:
        return text(outbox_id)

    def accepted_ids(self, fake: FakeServer) -> list[int]:
        assert isinstance(fake, FakeSmsGateway)
        return [int(t.reference) for t in fake.accepted]


def test_an_invalid_number_is_suppressed() -> None:
    with FakeSmsGateway(api_key="k") as fake:
        results = TestSmsContract().send(fake, [text(1, to="600 000 001"), text(2)])
    assert isinstance(results[0], PermanentError) and results[0].suppress
    assert isinstance(results[1], Receipt)


def test_routed_by_config_alone(tmp_path: Path) -> None:
    with FakeSmsGateway(api_key="k") as fake:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[channels.sms]\nprovider = "sms"\n[channels.providers.sms]\nbase_url = "{fake.url}"\n'
        )
        routes = build_routes(
            load_settings(config, env={}).channels,
            ChannelContext(env={"SMS_API_KEY": "k"}, config_file=config),
            only="sms",
        )

        async def go() -> list[Any]:
            async with routes:
                return await routes["sms"].send([text(7)])

        [result] = asyncio.run(go())
    assert isinstance(result, Receipt) and result.provider == "sms"
    assert [t.reference for t in fake.accepted] == ["7"]
