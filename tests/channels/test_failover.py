"""Several providers behind one channel: who gets which message, and when nothing moves on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from narrowcast.channels import (
    Channel,
    ChannelContext,
    ChannelPaused,
    Failover,
    Message,
    PermanentError,
    Receipt,
    Result,
    TransientError,
    build_routes,
)
from narrowcast.config import load_settings
from narrowcast.testing import FakeSendGrid

from .conftest import Relay
from .messages import NOW, email, run

Answer = Callable[[Message], Result]


class Scripted(Channel):  # type: ignore[type-arg]
    """A provider that answers each message with a function of it, and remembers what it got."""

    channels = frozenset({"email"})

    def __init__(self, name: str, answer: Answer, context: ChannelContext) -> None:
        super().__init__(None, context)
        self.name = name  # type: ignore[misc]
        self.answer = answer
        self.got: list[int] = []

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        self.got.extend(m.outbox_id for m in batch)
        return [self.answer(m) for m in batch]


def ok(name: str) -> Answer:
    return lambda m: Receipt(m.outbox_id, name, f"{name}-{m.outbox_id}")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_transient_failures_move_on_and_order_is_kept() -> None:
    context = ChannelContext()
    first = Scripted(
        "a",
        lambda m: (
            Receipt(m.outbox_id, "a", None)
            if m.outbox_id % 2
            else TransientError("503", outbox_id=m.outbox_id)
        ),
        context,
    )
    second = Scripted("b", ok("b"), context)
    results = run(Failover([first, second], context).send([email(i) for i in range(1, 5)]))
    assert [(r.outbox_id, r.provider) for r in results if isinstance(r, Receipt)] == [
        (1, "a"),
        (2, "b"),
        (3, "a"),
        (4, "b"),
    ]
    assert second.got == [2, 4]


def test_in_doubt_and_permanent_answers_stay_with_the_first_provider() -> None:
    context = ChannelContext()

    def answer(m: Message) -> Result:
        if m.outbox_id == 1:
            return TransientError("read timeout", outbox_id=1, in_doubt=True)
        return PermanentError("bad address", outbox_id=m.outbox_id, suppress=True)

    second = Scripted("b", ok("b"), context)
    results = run(
        Failover([Scripted("a", answer, context), second], context).send([email(1), email(2)])
    )
    assert isinstance(results[0], TransientError) and results[0].in_doubt
    assert isinstance(results[1], PermanentError) and results[1].suppress
    assert second.got == []


def test_a_paused_provider_is_skipped_until_the_pause_ends() -> None:
    clock = Clock()
    context = ChannelContext(clock=clock)
    first = Scripted("a", lambda m: ChannelPaused("401 bad key", outbox_id=m.outbox_id), context)
    second = Scripted("b", ok("b"), context)
    failover = Failover([first, second], context, pause_seconds=60)
    assert all(isinstance(r, Receipt) for r in run(failover.send([email(1)])))
    run(failover.send([email(2)]))
    assert first.got == [1]  # skipped while paused
    clock.now += timedelta(seconds=61)
    run(failover.send([email(3)]))
    assert first.got == [1, 3] and second.got == [1, 2, 3]


def test_when_every_provider_is_paused_the_channel_is() -> None:
    context = ChannelContext()
    paused = lambda m: ChannelPaused("401", outbox_id=m.outbox_id)  # noqa: E731
    failover = Failover([Scripted("a", paused, context), Scripted("b", paused, context)], context)
    results = run(failover.send([email(1), email(2)]))
    assert all(isinstance(r, ChannelPaused) for r in results)
    assert [r.outbox_id for r in results if isinstance(r, ChannelPaused)] == [1, 2]


def test_sendgrid_then_smtp_from_config(relay: Relay, tmp_path: Path) -> None:
    """A refused SendGrid key moves the mail to the SMTP relay, and SendGrid is skipped after."""
    with FakeSendGrid(api_key="SG.right") as sendgrid:
        config = tmp_path / "config.toml"
        config.write_text(
            '[channels.email]\nprovider = ["sendgrid", "smtp"]\nsender = "Shop <n@shop.example>"\n'
            f'[channels.providers.sendgrid]\nbase_url = "{sendgrid.url}"\n'
            f'[channels.providers.smtp]\nhost = "127.0.0.1"\nport = {relay.port}\ntls = "none"\n'
        )
        routes = build_routes(
            load_settings(config, env={}).channels,
            ChannelContext(env={"SENDGRID_API_KEY": "SG.wrong"}, config_file=config),
            only="email",
        )

        async def go() -> list[Result]:
            async with routes:
                first = await routes["email"].send([email(1), email(2, to="bo@example.com")])
                return first + await routes["email"].send([email(3, to="cy@example.com")])

        results = run(go())
    assert [(type(r), getattr(r, "provider", None)) for r in results] == [(Receipt, "smtp")] * 3
    assert sorted(r.rcpt_tos[0] for r in relay.received) == [
        "ana@example.com",
        "bo@example.com",
        "cy@example.com",
    ]
    assert len(sendgrid.requests) <= 2  # the first batch only: then SendGrid is paused
