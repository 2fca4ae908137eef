"""A shop of consenting customers, a campaign for all of them, and a worker to run it.

``Shop`` writes N customers with an email address and marketing consent
straight into the store, one campaign file (``blast``: everyone, now, email,
10 % holdout, the same content for everyone so the SendGrid adapter packs up to
a thousand personalizations per request), and a config.toml that routes email
to a fake SendGrid on 127.0.0.1. ``Shop.worker(...)`` starts ``narrowcast run``
as a real subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from narrowcast.store import Store
from narrowcast.store.schema import consents, customers
from narrowcast.testing import FakeSendGrid

KEY = "SG.crash-test-key"
BIN = Path(sys.executable).parent / "narrowcast"


@dataclass
class Shop:
    folder: Path
    store: Store
    fake: FakeSendGrid
    size: int

    @property
    def config(self) -> Path:
        return self.folder / "config.toml"

    def worker(self, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        output = open(log or self.folder / "worker.log", "ab")  # noqa: SIM115 (closed by the OS)
        return subprocess.Popen(
            [str(BIN), "--config", str(self.config), *args],
            cwd=self.folder,
            env={**os.environ, "SG_KEY": KEY},
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "--config", str(self.config), *args],
            cwd=self.folder,
            env={**os.environ, "SG_KEY": KEY},
            capture_output=True,
            text=True,
            timeout=300,
        )


def write_shop(folder: Path, store: Store, fake: FakeSendGrid, size: int, **dispatch: str) -> Shop:
    now = datetime.now(UTC)
    seeded = now - timedelta(days=30)
    rows = [
        {
            "id": f"c{n:06d}",
            "email": f"customer{n}@example.com",
            "timezone": "UTC",
            "locale": "en",
            "customer_type": "individual",
            "created_at": seeded,
            "updated_at": seeded,
            "attributes": {},
        }
        for n in range(size)
    ]
    with store.begin() as conn:
        for start in range(0, size, 5000):
            conn.execute(insert(customers), rows[start : start + 5000])
            conn.execute(
                insert(consents),
                [
                    {
                        "customer_id": row["id"],
                        "channel": "email",
                        "purpose": "marketing",
                        "granted": True,
                        "source": "test",
                        "updated_at": seeded,
                    }
                    for row in rows[start : start + 5000]
                ],
            )
    (folder / "campaigns").mkdir()
    (folder / "templates" / "blast").mkdir(parents=True)
    at = (now - timedelta(minutes=1)).replace(microsecond=0).isoformat()
    (folder / "campaigns" / "blast.toml").write_text(
        textwrap.dedent(
            f"""
            name = "blast"
            where = "True"
            at = {at}
            channel = ["email"]
            holdout = 0.1
            expires = "2h"
            """
        )
    )
    (folder / "templates" / "blast" / "email.subject.j2").write_text("Our winter sale is on")
    (folder / "templates" / "blast" / "email.html.j2").write_text(
        "<html><body><h1>Winter sale</h1><p>Everything 20 % off.</p></body></html>"
    )
    settings = "\n".join(f"{k} = {v}" for k, v in dispatch.items())
    url = store.url.render_as_string(hide_password=False)
    (folder / "config.toml").write_text(
        textwrap.dedent(
            f"""
            [database]
            url = "{url}"

            [planning]
            quiet_hours = ""

            [dispatch]
            lease = "3s"
            backoff = "1s"
            """
        )
        + settings
        + textwrap.dedent(
            f"""

            [dispatch.channels.email]
            concurrency = 2
            batch_size = 500

            [worker]
            plan_every = "2s"
            housekeeping_every = "1s"
            grace = "5s"
            stale_plan = "5s"

            [channels.email]
            provider = "sendgrid"
            sender = "Shop <news@shop.example>"

            [channels.providers.sendgrid]
            api_key_env = "SG_KEY"
            base_url = "{fake.url}"
            """
        )
    )
    return Shop(folder, store, fake, size)


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as fake:
        yield fake
