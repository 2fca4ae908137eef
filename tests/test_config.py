"""config.toml: defaults, environment overrides and errors that name the key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrowcast.config import DEFAULT_DATABASE_URL, ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_at_all_gives_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.import_.batch_size is None  # the importer picks per database
    assert settings.source is None


def test_the_shipped_config_is_valid() -> None:
    shipped = Path(__file__).resolve().parent.parent / "config.toml"
    assert load_settings(shipped, env={}).source == shipped


def test_values_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n[import]\nbatch_size = 500\n')
    settings = load_settings(path, env={})
    assert settings.database_url == "sqlite:///x.db"
    assert settings.import_.batch_size == 500


def test_environment_overrides_the_database_url(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n')
    env = {"NARROWCAST_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    assert load_settings(path, env=env).database_url == "postgresql+psycopg://u@h/db"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///from-env.db"\n')
    assert load_settings(env={"NARROWCAST_CONFIG": str(path)}).database_url.endswith("from-env.db")


def test_a_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: no such config file"):
        load_settings(tmp_path / "missing.toml", env={})


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurll = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'database.urll'" in message
    assert "did you mean 'url'" in message


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'databse'.*did you mean 'database'"):
        load_settings(_write(tmp_path, '[databse]\nurl = "x"\n'), env={})


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[import]\nbatch_size = "lots"\n')
    with pytest.raises(ConfigError, match=r"'import\.batch_size'.*integer"):
        load_settings(path, env={})


def test_out_of_range_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'import'.*at least 1"):
        load_settings(_write(tmp_path, "[import]\nbatch_size = 0\n"), env={})


def test_index_rebuild_threshold_is_read_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "[import]\nrebuild_indexes_above = 2.5\n")
    assert load_settings(path, env={}).import_.rebuild_indexes_above == 2.5
    with pytest.raises(ConfigError, match=r"'import'.*rebuild_indexes_above must be more than 0"):
        load_settings(_write(tmp_path, "[import]\nrebuild_indexes_above = 0\n"), env={})


def test_api_keys_come_from_named_variables(tmp_path: Path) -> None:
    from narrowcast.api.settings import ApiConfigError, ApiSecrets

    path = _write(
        tmp_path, '[api]\napi_key_env = "SHOP_KEY"\ncors_origins = ["https://s.example"]\n'
    )
    settings = load_settings(path, env={})
    assert ApiSecrets.from_env(settings.api, {"SHOP_KEY": "k" * 20}).api_key == "k" * 20
    with pytest.raises(ApiConfigError, match=r"'api\.api_key_env'.*SHOP_KEY.*not set"):
        ApiSecrets.from_env(settings.api, {})
    with pytest.raises(ConfigError, match=r"unknown key 'api\.cors_origin'"):
        load_settings(_write(tmp_path, '[api]\ncors_origin = ["x"]\n'), env={})


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "unterminated\n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_settings(path, env={})


def test_secret_comes_from_the_named_environment_variable(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl_env = "SHOP_DB_URL"\n')
    env = {"SHOP_DB_URL": "postgresql+psycopg://shop:s3cret@db/shop"}
    assert load_settings(path, env=env).database_url == env["SHOP_DB_URL"]


def test_missing_secret_variable_names_key_variable_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl_env = "SHOP_DB_URL"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "database.url_env" in message and "SHOP_DB_URL" in message and str(path) in message


def test_url_and_url_env_together_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, '[database]\nurl = "sqlite:///a.db"\nurl_env = "X"\n')
    with pytest.raises(ConfigError, match="either 'url' or 'url_env'"):
        load_settings(path, env={"X": "sqlite:///b.db"})
