"""Channel adapters against their local fakes: messages/s through the adapter vs raw httpx.

For sendgrid, fcm and webhook: the fake provider runs in its own process on
127.0.0.1 (so it does not share this process's GIL); this process sends N
messages through the adapter at a fixed concurrency, and — the ceiling — posts
the same pre-built request bodies with a bare ``httpx.AsyncClient`` at the
same concurrency and in the same batches to the same fake. Each round runs both,
alternating which goes first; the best rate of each is reported, with the ratio
of the bests and the median of the per-round ratios (the steadier figure on a
shared machine). Target: adapter ≥ 0.8 × ceiling.

    .venv/bin/python bench/channels_bench.py [--messages 1500] [--concurrency 32] [--rounds 4]

Bounded: N messages per round, a 120 s timeout per round, everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import orjson

from narrowcast.channels import Channel, ChannelContext, Message, Receipt, Sender
from narrowcast.channels.fcm import FcmChannel
from narrowcast.channels.sendgrid import SendGridChannel
from narrowcast.channels.settings import FcmSettings, SendGridSettings, WebhookSettings
from narrowcast.channels.webhook import WebhookChannel, sign

KEY = "SG.bench"
SECRET = "bench-secret"
SENDER = Sender.parse("Bench Shop <news@shop.example>")


def _serve(kind: str, ready: Any, stop: Event) -> None:
    from narrowcast.testing import FakeFcm, FakeSendGrid, FakeWebhookReceiver

    fake: Any = {
        "sendgrid": lambda: FakeSendGrid(api_key=KEY),
        "fcm": lambda: FakeFcm(),
        "webhook": lambda: FakeWebhookReceiver(SECRET),
    }[kind]()
    with fake:
        extra = ""
        if kind == "fcm":
            extra = str(fake.write_service_account(Path(tempfile.mkdtemp()) / "sa.json"))
        ready.put((fake.url, extra))
        stop.wait(600)


def email(i: int) -> Message:
    return Message(
        outbox_id=i,
        channel="email",
        customer_id=f"c{i}",
        to=f"customer{i}@example.com",
        parts={
            "subject": f"Spring sale for you, #{i}",
            "html": f"<html><body><h1>Hello {i}</h1>{'<p>Offers inside.</p>' * 20}</body></html>",
            "text": f"Hello {i}\n" + "Offers inside.\n" * 20,
        },
        campaign="spring-sale",
        variant="b",
        unsubscribe_url=f"https://shop.example/u/{i}",
    )


def push(i: int) -> Message:
    return Message(
        outbox_id=i,
        channel="push",
        customer_id=f"c{i}",
        to=f"token-{i:08d}-" + "x" * 140,
        parts={"title": "Your cart misses you", "body": f"Come back, {i}", "data": {"s": "cart"}},
        campaign="cart",
    )


def webhook(i: int) -> Message:
    return Message(
        outbox_id=i,
        channel="webhook",
        customer_id=f"c{i}",
        to="",
        parts={"body": {"event": "vip_entered", "customer": f"c{i}", "tier": "gold"}},
        campaign="crm-sync",
    )


async def through_adapter(channel: Channel[Any], messages: list[Message], batch: int) -> int:
    accepted = 0
    async with channel:
        for start in range(0, len(messages), batch):
            results = await channel.send(messages[start : start + batch])
            accepted += sum(isinstance(r, Receipt) for r in results)
    return accepted


async def raw_posts(
    url: str,
    bodies: list[bytes],
    headers: Callable[[bytes], dict[str, str]],
    concurrency: int,
    batch: int,
) -> int:
    """The ceiling: the same requests, batches and concurrency, with nothing else to do."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    accepted = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def post(body: bytes) -> bool:
            async with gate:
                response = await client.post(url, content=body, headers=headers(body))
                return response.is_success

        for start in range(0, len(bodies), batch):
            chunk = bodies[start : start + batch]
            accepted += sum(await asyncio.gather(*(post(body) for body in chunk)))
    return accepted


async def fcm_token(account: str) -> str:
    from google.oauth2 import service_account

    credential = service_account.Credentials.from_service_account_file(
        account, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    from google.auth.transport.requests import Request

    await asyncio.to_thread(credential.refresh, Request())
    return str(credential.token)


def plan(
    kind: str, url: str, extra: str, n: int, concurrency: int
) -> tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[int]]]:
    """(adapter run, ceiling run) for one provider."""
    if kind == "sendgrid":
        messages = [email(i) for i in range(1, n + 1)]
        settings = SendGridSettings(base_url=url, concurrency=concurrency)
        context = ChannelContext(env={"SENDGRID_API_KEY": KEY}, sender=SENDER)
        builder = SendGridChannel(settings, context)
        bodies = []
        for message in messages:
            shared, personalization = builder._parts(message)
            bodies.append(orjson.dumps({**shared, "personalizations": [personalization]}))
        auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        return (
            lambda: through_adapter(SendGridChannel(settings, context), messages, 1000),
            lambda: raw_posts(f"{url}/v3/mail/send", bodies, lambda _: auth, concurrency, 1000),
        )
    if kind == "webhook":
        messages = [webhook(i) for i in range(1, n + 1)]
        settings_w = WebhookSettings(
            url=url, secret_env="HOOK", concurrency=concurrency, max_batch=1000
        )
        context = ChannelContext(env={"HOOK": SECRET})
        bodies = [orjson.dumps(m.parts["body"]) for m in messages]

        def signed(body: bytes) -> dict[str, str]:
            now = int(time.time())
            return {
                "Content-Type": "application/json",
                "Narrowcast-Timestamp": str(now),
                "Narrowcast-Signature": sign(SECRET, now, body),
            }

        return (
            lambda: through_adapter(WebhookChannel(settings_w, context), messages, 1000),
            lambda: raw_posts(url, bodies, signed, concurrency, 1000),
        )
    messages = [push(i) for i in range(1, n + 1)]
    settings_f = FcmSettings(credentials_file=extra, base_url=url)
    fcm = FcmChannel(settings_f, ChannelContext())
    bodies = []
    from firebase_admin import messaging

    for message in messages:
        built = fcm._build(message)
        assert isinstance(built, messaging.Message)
        bodies.append(orjson.dumps({"message": messaging._MessagingService.encode_message(built)}))
    token = asyncio.run(fcm_token(extra))
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # send_each_async starts one request per message of a batch at once: a batch is the
    # concurrency.
    return (
        lambda: through_adapter(FcmChannel(settings_f, ChannelContext()), messages, concurrency),
        lambda: raw_posts(
            f"{url}/v1/projects/narrowcast-test/messages:send",
            bodies,
            lambda _: auth,
            concurrency,
            concurrency,
        ),
    )


def timed(run: Callable[[], Awaitable[int]], n: int) -> float:
    start = time.perf_counter()
    accepted = asyncio.run(asyncio.wait_for(run(), timeout=120))
    elapsed = time.perf_counter() - start
    if accepted != n:
        raise SystemExit(f"only {accepted} of {n} messages were accepted")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", choices=["sendgrid", "fcm", "webhook"])
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["sendgrid", "fcm", "webhook"]
    context = multiprocessing.get_context("spawn")
    print(
        f"{args.messages:,} messages per round, concurrency {args.concurrency}, "
        f"{args.rounds} rounds; fake provider in its own process on 127.0.0.1; "
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"{'adapter':<10} {'adapter msg/s':>14} {'ceiling msg/s':>14} {'ratio':>7} "
        f"{'median ratio':>13}   (per round)"
    )
    for kind in kinds:
        ready, stop = context.Queue(), context.Event()
        server = context.Process(target=_serve, args=(kind, ready, stop), daemon=True)
        server.start()
        try:
            url, extra = ready.get(timeout=60)
            adapter_run, ceiling_run = plan(kind, url, extra, args.messages, args.concurrency)
            adapter_rates: list[float] = []
            ceiling_rates: list[float] = []
            for round_ in range(args.rounds):
                # Alternate which goes first so warm-up and drifting load hit both alike.
                if round_ % 2 == 0:
                    ceiling_rates.append(timed(ceiling_run, args.messages))
                    adapter_rates.append(timed(adapter_run, args.messages))
                else:
                    adapter_rates.append(timed(adapter_run, args.messages))
                    ceiling_rates.append(timed(ceiling_run, args.messages))
            ratios = [a / c for a, c in zip(adapter_rates, ceiling_rates, strict=True)]
            best = max(adapter_rates) / max(ceiling_rates)
            print(
                f"{kind:<10} {max(adapter_rates):>14,.0f} {max(ceiling_rates):>14,.0f} "
                f"{best:>7.2f} {statistics.median(ratios):>13.2f}"
                f"   ({', '.join(f'{r:.2f}' for r in ratios)})"
            )
        finally:
            stop.set()
            server.join(timeout=10)
            if server.is_alive():
                server.terminate()


if __name__ == "__main__":
    main()
