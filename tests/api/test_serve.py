"""`narrowcast serve` and `narrowcast run --http`: the API on a real port, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from narrowcast.store import Store
from tests.api.conftest import free_port

BIN = Path(sys.executable).parent / "narrowcast"


def _start(folder: Path, store: Store, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "{store.url.render_as_string(hide_password=False)}"\n'
        '[api]\napi_key_env = "NC_TEST_API_KEY"\n'
    )
    log = folder / "server.log"
    process = subprocess.Popen(
        [str(BIN), "--config", str(config), *args],
        cwd=folder,
        env={**os.environ, "NC_TEST_API_KEY": "k" * 24},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    return process, log


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            return httpx.get(url + "/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)


@pytest.mark.parametrize(
    "command", [["serve", "--port"], ["serve", "--workers", "2", "--port"], ["run", "--http"]]
)
def test_the_api_serves_until_sigterm(
    sqlite_store: Store, tmp_path: Path, command: list[str]
) -> None:
    sqlite_store.upgrade()
    port = free_port()
    address = str(port) if command[0] == "serve" else f"127.0.0.1:{port}"
    process, log = _start(tmp_path, sqlite_store, *command, address)
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_healthy(url, process, log)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        refused = httpx.post(url + "/v1/events", json={"events": []})
        assert refused.status_code == 401, "the ingest key from the environment is enforced"
        metrics = httpx.get(url + "/metrics").text
        assert "narrowcast_http_requests_total" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]


def test_a_bad_http_address_is_a_clear_error(sqlite_store: Store, tmp_path: Path) -> None:
    sqlite_store.upgrade()
    process, log = _start(tmp_path, sqlite_store, "run", "--http", "localhost:http")
    assert process.wait(timeout=30) == 2
    assert "is not HOST:PORT or PORT" in log.read_text()


def test_a_missing_api_key_variable_is_named(sqlite_store: Store, tmp_path: Path) -> None:
    sqlite_store.upgrade()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{sqlite_store.url}"\n[api]\napi_key_env = "NC_UNSET_KEY_VAR"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "NC_UNSET_KEY_VAR"}
    done = subprocess.run(
        [str(BIN), "--config", str(config), "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "api.api_key_env" in done.stderr and "NC_UNSET_KEY_VAR" in done.stderr
