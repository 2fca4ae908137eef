"""The README's Templates section works as shown: its example and its error messages."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from narrowcast.render import Links, Renderer, RenderError, Signer, Templates

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Templates") : README.index("## Development")]


def _block_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r"\n```\w*\n(.*?)```", SECTION, re.S)
    assert match, marker
    return match.group(1)


def test_the_template_shown_is_the_shipped_file() -> None:
    shown = _block_after("<!-- template: cart_abandoner/push.body.es.j2 -->")
    assert shown == (ROOT / "templates/cart_abandoner/push.body.es.j2").read_text("utf-8")


def test_the_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(_block_after("<!-- render-example -->"), "README.md", "exec"), {})


def _errors_shown() -> list[str]:
    block = SECTION[SECTION.index("**Mistakes**") :]
    return _block_after_in(block).strip().splitlines()


def _block_after_in(text: str) -> str:
    match = re.search(r"```\n(.*?)```", text, re.S)
    assert match
    return match.group(1)


def _error(tmp_path: Path, files: dict[str, str], call: dict[str, Any]) -> str:
    for name, content in files.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    renderer = Renderer(Templates("templates"), Links(Signer(b"s" * 32), "https://n.example"))
    customer = {"id": "c-1", "first_name": "Ana", "locale": "es-ES", **call.pop("customer", {})}
    with pytest.raises(RenderError) as info:
        renderer.render(call.pop("channel"), customer, **call)
    return str(info.value)


CART = {"name": "cart_abandoner"}
CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    (
        {
            "cart_abandoner/email.subject.j2": "Hi {{ customer.frist_name }}",
            "cart_abandoner/email.html.j2": "<p>x</p>",
        },
        {"channel": "email", "campaign": CART, "customer": {"locale": None}},
    ),
    (
        {
            "cart_abandoner/email.subject.j2": "Hi",
            "cart_abandoner/email.html.j2": "<p>\n" * 12 + "{% if segment.vip %}\nVIP",
        },
        {"channel": "email", "campaign": CART, "customer": {"locale": None}},
    ),
    (
        {"cart_abandoner/push.body.j2": "{{ 5 | money('EURO') }}"},
        {"channel": "push", "campaign": CART, "customer": {"locale": None}},
    ),
    (
        {"cart_abandoner/push.body.j2": "Hi\n{{ ''.__class__.__mro__ }}"},
        {"channel": "push", "campaign": CART, "customer": {"locale": None}},
    ),
    (
        {"spring/webhook.body.j2": '{"name": "{{ customer.first_name }}"}'},
        {"channel": "webhook", "campaign": {"name": "spring"}, "customer": {"first_name": 'A"'}},
    ),
    (
        {"cart_abandoner/email.html.j2": "<p>x</p>"},
        {"channel": "email", "campaign": CART},
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_errors_shown_are_the_errors_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: int
) -> None:
    monkeypatch.chdir(tmp_path)
    files, call = CASES[case]
    shown = _errors_shown()[case]
    message = _error(tmp_path, files, dict(call))
    if "…" in shown:
        for piece in shown.split("…"):
            assert piece.strip(" —") in message
    else:
        assert message == shown


def test_the_filter_examples(tmp_path: Path) -> None:
    table = SECTION[SECTION.index("**Filters**") : SECTION.index("plus Jinja's own")]
    examples = re.findall(r"`(\{\{.*?\}\})` → `(.*?)`", table.replace("\\|", "|"))
    assert len(examples) == 4
    files = {f"f/push.body{n}.j2": template for n, (template, _) in enumerate(examples)}
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    renderer = Renderer(Templates(tmp_path), Links(Signer(b"s" * 32), "https://n.example"))
    segment = {"last_order": {"ts": "2026-07-01T10:00:00Z"}, "clv": 1234.5}
    for n, (_, expected) in enumerate(examples):
        customer = {
            "id": "c-1",
            "locale": "es-ES",
            "timezone": "Europe/Madrid",
            "birth_date": date(1990, 12, 4),
        }
        message = renderer.render(
            "push",
            customer,
            campaign={"name": "f"},
            segment=segment,
            paths={"body": f"f/push.body{n}.j2"},
        )
        assert message["body"].replace("\u00a0", " ") == expected
