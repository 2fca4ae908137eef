"""[channels] in config.toml: defaults, routes, failover lists and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrowcast.channels import ChannelConfigError, ChannelContext, build_routes
from narrowcast.channels.file import FileChannel
from narrowcast.config import ConfigError, load_settings


def _settings(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env={}), path


def test_no_config_sends_email_push_and_webhook_to_files(tmp_path: Path) -> None:
    settings, _ = _settings(tmp_path, "")
    routes = settings.channels.routes()
    assert {kind: route.providers for kind, route in routes.items()} == {
        "email": ("file",),
        "push": ("file",),
        "in_app": ("inapp",),
        "web": ("web",),
        "webhook": ("file",),
    }
    assert settings.channels.providers.file.directory == "outbox"


def test_a_list_of_providers_is_a_failover_order(tmp_path: Path) -> None:
    settings, _ = _settings(
        tmp_path,
        '[channels.email]\nprovider = ["sendgrid", "smtp"]\nsender = "Shop <n@s.example>"\n',
    )
    assert settings.channels.email.providers == ("sendgrid", "smtp")
    assert settings.channels.email.parsed_sender().address == "n@s.example"
    assert settings.channels.email.parsed_sender().name == "Shop"


def test_a_plugin_channel_gets_its_own_table(tmp_path: Path) -> None:
    settings, _ = _settings(
        tmp_path, '[channels.sms]\nprovider = "sms"\n[channels.providers.sms]\nurl = "http://x"\n'
    )
    assert settings.channels.routes()["sms"].providers == ("sms",)
    assert settings.channels.providers.table("sms") == {"url": "http://x"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[channels.emial]\nprovider = "file"\n',
            r"unknown channel 'emial' — did you mean 'email'",
        ),
        (
            '[channels.providers.sendgrid]\napi_key = "SG.x"\n',
            r"unknown key 'channels\.providers\.sendgrid\.api_key' — did you mean 'api_key_env'",
        ),
        (
            '[channels.email]\nsender = "not an address"\n',
            r"'channels\.email\.sender'.*not an email",
        ),
        ("[channels.push]\nprovider = []\n", r"'channels\.push\.provider'.*at least one provider"),
        ('[channels.email]\nprovider = ["file", "file"]\n', r"a provider is named twice"),
        ('[channels.providers.smtp]\ntls = "ssl"\n', r"'channels\.providers\.smtp\.tls'"),
        ('[channels.providers.smtp]\nusername = "u"\n', r"both 'username' and 'password_env'"),
        ('[channels.sms]\nurl = "x"\n', r"\[channels\.sms\]"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings(path, env={})
    assert str(path) in str(info.value)


def _context(tmp_path: Path, config: Path) -> ChannelContext:
    return ChannelContext(config_file=config, root=tmp_path, env={})


def test_routes_share_one_adapter_between_channels(tmp_path: Path) -> None:
    settings, path = _settings(
        tmp_path, '[channels.in_app]\nprovider = "file"\n[channels.web]\nprovider = "file"\n'
    )
    routes = build_routes(settings.channels, _context(tmp_path, path), only=None)
    assert isinstance(routes["email"], FileChannel)
    assert routes["email"] is routes["push"] is routes["in_app"]


def test_an_unknown_provider_names_the_key_and_suggests(tmp_path: Path) -> None:
    settings, path = _settings(tmp_path, '[channels.push]\nprovider = "fiel"\n')
    with pytest.raises(ChannelConfigError, match=r"no such channel adapter.*did you mean 'file'"):
        build_routes(settings.channels, _context(tmp_path, path), only="push")


def test_a_provider_table_for_no_installed_adapter_is_refused(tmp_path: Path) -> None:
    settings, path = _settings(tmp_path, '[channels.providers.sendgird]\napi_key_env = "X"\n')
    with pytest.raises(ChannelConfigError, match=r"providers\.sendgird.*did you mean 'sendgrid'"):
        build_routes(settings.channels, _context(tmp_path, path), only="push")


def test_a_channel_without_a_route_is_named(tmp_path: Path) -> None:
    settings, path = _settings(tmp_path, "")
    with pytest.raises(ChannelConfigError, match=r"no \[channels\.sms\] table"):
        build_routes(settings.channels, _context(tmp_path, path), only="sms")
