"""[links] settings and the signing secret: environment, generated file, mistakes."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from narrowcast.config import ConfigError, load_settings
from narrowcast.render import LinksSettings, Renderer, load_secret
from narrowcast.render.settings import DEFAULT_BASE_URL, SECRET_FILE

GOOD = "s" * 40


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    links = load_settings(env={}).links
    assert links.base_url == DEFAULT_BASE_URL == "http://127.0.0.1:8000"
    assert links.secret_env is None


def test_links_section(tmp_path: Path) -> None:
    path = _config(
        tmp_path, '[links]\nbase_url = "https://news.example.com/"\nsecret_env = "LINK_SECRET"\n'
    )
    links = load_settings(path, env={}).links
    assert links.base_url == "https://news.example.com"  # the trailing slash is dropped
    assert links.secret_env == "LINK_SECRET"


def test_unknown_key_in_links(tmp_path: Path) -> None:
    path = _config(tmp_path, '[links]\nbase_ur = "https://x.example"\n')
    with pytest.raises(
        ConfigError, match=r"unknown key 'links\.base_ur' — did you mean 'base_url'"
    ):
        load_settings(path, env={})


@pytest.mark.parametrize("url", ["ftp://x.example", "news.example.com", "https://x.example/?a=1"])
def test_base_url_must_be_http(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"'links\.base_url'"):
        load_settings(_config(tmp_path, f'[links]\nbase_url = "{url}"\n'), env={})


def test_secret_from_the_environment(tmp_path: Path) -> None:
    secret = load_secret(LinksSettings(secret_env="LINK_SECRET"), env={"LINK_SECRET": GOOD})
    assert secret.value == GOOD.encode()
    assert "LINK_SECRET" in secret.origin and not secret.generated
    assert not (tmp_path / SECRET_FILE).exists()


def test_missing_secret_variable_names_key_and_variable() -> None:
    with pytest.raises(
        ConfigError, match=r"'links\.secret_env' names .* LINK_SECRET, which is not set"
    ):
        load_secret(LinksSettings(secret_env="LINK_SECRET"), env={})


def test_short_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has 5 characters; use at least 32"):
        load_secret(LinksSettings(secret_env="S"), env={"S": "short"})


def test_generated_secret_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="narrowcast.render.settings"):
        first = load_secret(LinksSettings(), env={}, folder=tmp_path)
    path = tmp_path / SECRET_FILE
    assert first.generated and str(path) in first.origin
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.value) >= 32
    assert "generated a new link-signing secret" in caplog.text and "secret_env" in caplog.text
    again = load_secret(LinksSettings(), env={}, folder=tmp_path)
    assert again.value == first.value and not again.generated
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temporary left behind


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    found: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        found.append(load_secret(LinksSettings(), env={}, folder=tmp_path).value)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len(set(found)) == 1


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILE
    path.write_text(GOOD)
    os.chmod(path, 0o644)
    with pytest.raises(
        ConfigError, match=r"can be read by other users \(mode 0644\) — run `chmod 600"
    ):
        load_secret(LinksSettings(), env={}, folder=tmp_path)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILE
    path.write_text("\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="holds 0 characters"):
        load_secret(LinksSettings(), env={}, folder=tmp_path)


def test_the_secret_file_is_git_ignored() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert SECRET_FILE in ignored


def test_renderer_from_settings(tmp_path: Path) -> None:
    path = _config(tmp_path, '[links]\nbase_url = "https://n.example"\nsecret_env = "S"\n')
    renderer = Renderer.from_settings(load_settings(path, env={}), tmp_path, env={"S": GOOD})
    link = renderer.links.unsubscribe("c-1")
    assert link.startswith("https://n.example/u/")
    assert renderer.links.signer.verify_unsubscribe(link.rsplit("/", 1)[1]).customer_id == "c-1"


def test_reading_the_config_does_not_load_jinja_or_babel() -> None:
    code = "import sys, narrowcast.config; print(sorted({'jinja2', 'babel'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import narrowcast.render

    for name in narrowcast.render.__all__:
        assert getattr(narrowcast.render, name) is not None
