"""The built-in network adapters pass the contract third-party adapters are held to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrowcast.channels import Channel, ChannelContext, Message, Sender
from narrowcast.channels.fcm import FcmChannel
from narrowcast.channels.sendgrid import SendGridChannel
from narrowcast.channels.settings import FcmSettings, SendGridSettings, WebhookSettings
from narrowcast.channels.webhook import WebhookChannel
from narrowcast.testing import (
    ChannelContract,
    FakeFcm,
    FakeSendGrid,
    FakeServer,
    FakeWebhookReceiver,
)

from .messages import email, push, webhook


class TestSendGridContract(ChannelContract):
    entry_point = "sendgrid"

    def make_fake(self) -> FakeServer:
        return FakeSendGrid(api_key="SG.k", forbidden_keys=())

    def make_channel(self, fake: FakeServer, *, timeout: float) -> Channel[Any]:
        return SendGridChannel(
            SendGridSettings(base_url=fake.url, timeout=timeout),
            ChannelContext(env={"SENDGRID_API_KEY": "SG.k"}, sender=Sender.parse("n@shop.example")),
        )

    def make_message(self, outbox_id: int) -> Message:
        return email(outbox_id, to=f"u{outbox_id}@example.com")

    def accepted_ids(self, fake: FakeServer) -> list[int]:
        assert isinstance(fake, FakeSendGrid)
        return fake.outbox_ids


class TestWebhookContract(ChannelContract):
    entry_point = "webhook"

    def make_fake(self) -> FakeServer:
        return FakeWebhookReceiver("s3cret")

    def make_channel(self, fake: FakeServer, *, timeout: float) -> Channel[Any]:
        return WebhookChannel(
            WebhookSettings(url=fake.url, secret_env="HOOK", timeout=timeout),
            ChannelContext(env={"HOOK": "s3cret"}),
        )

    def make_message(self, outbox_id: int) -> Message:
        return webhook(outbox_id)

    def accepted_ids(self, fake: FakeServer) -> list[int]:
        assert isinstance(fake, FakeWebhookReceiver)
        return [delivery.outbox_id for delivery in fake.accepted]


class TestFcmContract(ChannelContract):
    entry_point = "fcm"
    fault_repeats = 3  # firebase-admin refreshes its token and retries a 401 twice

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def make_fake(self) -> FakeServer:
        return FakeFcm()

    def make_channel(self, fake: FakeServer, *, timeout: float) -> Channel[Any]:
        assert isinstance(fake, FakeFcm)
        account = self.folder / f"sa-{fake.url.rsplit(':', 1)[1]}.json"
        if not account.exists():
            fake.write_service_account(account)
        return FcmChannel(
            FcmSettings(credentials_file=str(account), base_url=fake.url, timeout=timeout),
            ChannelContext(),
        )

    def make_message(self, outbox_id: int) -> Message:
        return push(outbox_id)

    def accepted_ids(self, fake: FakeServer) -> list[int]:
        assert isinstance(fake, FakeFcm)
        return [p.outbox_id for p in fake.delivered]
