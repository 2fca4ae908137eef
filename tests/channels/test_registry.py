"""Plugins are found through entry points and refused, by name, when they break the contract."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint

import pytest

from narrowcast.channels import Channel, Message, PluginError, Receipt, Result, discover, load
from narrowcast.channels.file import FileChannel

GROUP = "narrowcast.channels"


class Good(Channel):  # type: ignore[type-arg]
    name = "good"
    channels = frozenset({"sms"})

    async def send(self, batch: Sequence[Message]) -> list[Result]:
        return [Receipt(m.outbox_id, self.name, None) for m in batch]


class Misnamed(Good):
    name = "other"


class NoKinds(Good):
    name = "nokinds"
    channels = frozenset()


class SyncSend(Good):
    name = "syncsend"

    def send(self, batch: Sequence[Message]) -> list[Result]:  # type: ignore[override]
        return []


class Abstract(Channel):  # type: ignore[type-arg]
    name = "abstract"
    channels = frozenset({"sms"})


class BadSettings(Good):
    name = "badsettings"
    settings_model = dict  # type: ignore[assignment]


def point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=GROUP)


HERE = __name__


def test_the_builtin_adapters_are_registered() -> None:
    plugins = {plugin.name: plugin for plugin in discover()}
    assert plugins["file"].adapter is FileChannel
    assert plugins["file"].error is None
    assert plugins["file"].distribution is not None
    assert plugins["file"].distribution.startswith("narrowcast ")
    assert load("file") is FileChannel


def test_a_valid_plugin_loads() -> None:
    assert load("good", [point("good", f"{HERE}:Good")]) is Good


@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [
        ("other", f"{HERE}:Good", r"Good\.name is 'good'; it must equal the entry-point name"),
        ("other", f"{HERE}:Misnamed", r"name is 'other'|"),
        ("nokinds", f"{HERE}:NoKinds", r"channels must be a non-empty set"),
        ("syncsend", f"{HERE}:SyncSend", r"send must be 'async def'"),
        ("abstract", f"{HERE}:Abstract", r"does not implement send"),
        ("badsettings", f"{HERE}:BadSettings", r"settings_model must be a pydantic"),
        ("notaclass", f"{HERE}:point", r"is not a subclass of narrowcast\.channels\.Channel"),
        ("gone", "narrowcast_no_such_module:Thing", r"cannot be imported: ModuleNotFoundError"),
    ],
)
def test_a_broken_plugin_is_refused_by_name(name: str, target: str, reason: str) -> None:
    if name == "other" and target.endswith("Misnamed"):
        assert load(name, [point(name, target)]) is Misnamed
        return
    with pytest.raises(PluginError, match=reason) as info:
        load(name, [point(name, target)])
    assert info.value.plugin == f"'{name}' ({target})"
    assert f"channel plugin '{name}' ({target})" in str(info.value)


def test_discover_keeps_going_past_a_broken_plugin() -> None:
    found = discover([point("gone", "nope_module:X"), point("good", f"{HERE}:Good")])
    assert [plugin.name for plugin in found] == ["gone", "good"]
    assert found[0].adapter is None and found[0].error is not None
    assert found[1].adapter is Good and found[1].error is None


def test_an_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(PluginError, match=r"did you mean 'file'.*installed: file"):
        load("fiel", [point("file", "narrowcast.channels.file:FileChannel")])
