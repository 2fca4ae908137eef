"""The README's Channels section works as shown: its config blocks load and route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from narrowcast.channels import ChannelContext, build_routes
from narrowcast.config import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Channels")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), flags=re.DOTALL)


CONFIGS = [block for block in _blocks("toml") if "entry-points" not in block]


def test_the_section_has_config_examples() -> None:
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("block", CONFIGS)
def test_config_examples_load_and_route(block: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(block, encoding="utf-8")
    settings = load_settings(config, env={})
    routes = build_routes(settings.channels, ChannelContext(config_file=config, root=tmp_path))
    for kind, route in settings.channels.routes().items():
        assert routes[kind].name == ("failover" if len(route.providers) > 1 else route.providers[0])


def test_the_adapter_example_is_valid_python() -> None:
    [example] = _blocks("python")
    compile(example, "README.md", "exec")
