"""The adapter contract as pytest tests: subclass ``ChannelContract`` in your adapter's tests.

    from narrowcast.testing import ChannelContract

    class TestSmsContract(ChannelContract):
        entry_point = "sms"

        def make_fake(self) -> FakeSmsGateway:
            return FakeSmsGateway(api_key="k")

        def make_channel(self, fake, *, timeout, key="k"):
            return SmsChannel(SmsSettings(base_url=fake.url, timeout=timeout), ChannelContext(...))

        def make_message(self, outbox_id):
            return Message(outbox_id=outbox_id, channel="sms", ...)

        def accepted_ids(self, fake):
            return [m.outbox_id for m in fake.accepted]

Every test runs your adapter against your fake provider (a ``FakeServer``),
scripted to misbehave, and checks what the dispatcher relies on: registered
under its name, one result per message in order, a receipt for what the
provider accepted, 500 → transient, 400 → permanent, 429 → transient with
``retry_after``, refused credentials → ``ChannelPaused``, timeouts and dropped
connections → transient, and never an exception for one message's failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest

from narrowcast.channels import registry
from narrowcast.channels.base import Channel, Message, Receipt, Result
from narrowcast.channels.errors import ChannelPaused, PermanentError, TransientError
from narrowcast.testing.server import FakeServer, Reply, Reset, Slow


class ChannelContract:
    """Contract tests for one adapter; fill in the four ``make_*`` / ``accepted_ids`` hooks."""

    entry_point: ClassVar[str]
    """The adapter's name in the ``narrowcast.channels`` entry-point group."""
    paused_statuses: ClassVar[tuple[int, ...]] = (401, 403)
    """HTTP answers meaning "your credentials are refused"."""
    fault_repeats: ClassVar[int] = 1
    """How many requests one scripted fault must answer: a client library that retries
    a 401 after refreshing its token (firebase-admin does) needs more than one."""

    # --- hooks --------------------------------------------------------------------------

    def make_fake(self) -> FakeServer:
        raise NotImplementedError

    def make_channel(self, fake: FakeServer, *, timeout: float) -> Channel[Any]:
        """An adapter (not opened) that talks to ``fake`` with this request timeout."""
        raise NotImplementedError

    def make_message(self, outbox_id: int) -> Message:
        """A valid message the fake provider accepts."""
        raise NotImplementedError

    def accepted_ids(self, fake: FakeServer) -> list[int]:
        """The outbox ids the fake provider accepted."""
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------

    @pytest.fixture
    def fake(self) -> Iterator[FakeServer]:
        with self.make_fake() as server:
            yield server

    def send(
        self, fake: FakeServer, batch: Sequence[Message], timeout: float = 2.0
    ) -> list[Result]:
        channel = self.make_channel(fake, timeout=timeout)

        async def go() -> list[Result]:
            async with channel:
                return await channel.send(batch)

        return asyncio.run(go())

    def send_one_with(
        self, fake: FakeServer, fault: Reply | Slow | Reset, timeout: float = 2.0
    ) -> Result:
        fake.script(fault, times=self.fault_repeats)
        results = self.send(fake, [self.make_message(1)], timeout=timeout)
        assert len(results) == 1, f"one message, {len(results)} results"
        return results[0]

    # --- the contract ---------------------------------------------------------------------

    def test_registered_under_its_entry_point_name(self) -> None:
        adapter = registry.load(self.entry_point)
        assert adapter.name == self.entry_point
        assert adapter.channels and adapter.max_batch >= 1

    def test_nothing_happens_before_open(self, fake: FakeServer) -> None:
        self.make_channel(fake, timeout=1.0)
        assert fake.requests == []

    def test_receipts_for_accepted_messages_in_order(self, fake: FakeServer) -> None:
        batch = [self.make_message(i) for i in (3, 1, 2)]
        results = self.send(fake, batch)
        assert [type(r) for r in results] == [Receipt, Receipt, Receipt], results
        assert [r.outbox_id for r in results if isinstance(r, Receipt)] == [3, 1, 2]
        assert all(r.provider == self.entry_point for r in results if isinstance(r, Receipt))
        assert sorted(self.accepted_ids(fake)) == [1, 2, 3]

    def test_an_empty_batch_sends_nothing(self, fake: FakeServer) -> None:
        assert self.send(fake, []) == []
        assert self.accepted_ids(fake) == []

    def test_close_twice_is_safe(self, fake: FakeServer) -> None:
        channel = self.make_channel(fake, timeout=1.0)

        async def go() -> None:
            await channel.open()
            await channel.close()
            await channel.close()

        asyncio.run(go())

    def test_500_is_transient(self, fake: FakeServer) -> None:
        result = self.send_one_with(fake, Reply(500))
        assert isinstance(result, TransientError) and not isinstance(result, ChannelPaused), result
        assert result.outbox_id == 1

    def test_400_is_permanent(self, fake: FakeServer) -> None:
        result = self.send_one_with(fake, Reply(400))
        assert isinstance(result, PermanentError), result
        assert result.outbox_id == 1

    def test_429_is_transient_with_retry_after(self, fake: FakeServer) -> None:
        result = self.send_one_with(fake, Reply(429, headers={"Retry-After": "7"}))
        assert isinstance(result, TransientError), result
        assert result.retry_after is not None and result.retry_after > 0

    def test_refused_credentials_pause_the_channel(self, fake: FakeServer) -> None:
        for status in self.paused_statuses:
            fake.script(Reply(status), times=self.fault_repeats * 2)
            results = self.send(fake, [self.make_message(1), self.make_message(2)])
            assert all(isinstance(r, ChannelPaused) for r in results), (status, results)
            fake.clear()

    def test_a_timeout_is_transient_and_in_doubt(self, fake: FakeServer) -> None:
        result = self.send_one_with(fake, Slow(1.0), timeout=0.2)
        assert isinstance(result, TransientError) and result.in_doubt, result

    def test_a_connection_reset_is_transient(self, fake: FakeServer) -> None:
        result = self.send_one_with(fake, Reset())
        assert isinstance(result, TransientError), result

    def test_nobody_listening_is_transient(self) -> None:
        with self.make_fake() as fake:
            channel = self.make_channel(fake, timeout=1.0)
        message = self.make_message(1)

        async def go() -> list[Result]:
            async with channel:
                return await channel.send([message])

        [result] = asyncio.run(go())
        assert isinstance(result, TransientError) and not result.in_doubt, result
