"""Templates print values through ``html_output`` / ``text_output``, exactly as Jinja would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2.compiler
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.runtime import markup_join
from markupsafe import Markup, escape

from narrowcast.render import Templates, UndefinedVariable
from narrowcast.render.codegen import finalize, html_join, html_output, text_output

from .conftest import Write


class Shouts:
    def __html__(self) -> str:
        return "<b>HI</b>"

    def __str__(self) -> str:
        return "hi"


VALUES: list[Any] = [
    "plain",
    "<script>alert('x') & \"y\"</script>",
    "",
    None,
    0,
    -12.5,
    True,
    Markup("<em>safe</em>"),
    Shouts(),
    ["<a>", 1],
    {"k": "<v>"},
]


@given(st.text())
def test_html_output_is_escape(value: str) -> None:
    assert html_output(value) == escape(finalize(value))
    assert type(html_output(value)) is str


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_outputs_equal_escape_and_str(value: Any) -> None:
    assert html_output(value) == escape(finalize(value))
    assert text_output(value) == str(finalize(value))


@pytest.mark.parametrize(
    "pieces",
    [("a", "<b>"), ("<a>", Markup("<b>")), ("x", 1.5, None), (), ("only",), (Shouts(), "&")],
    ids=repr,
)
def test_html_join_is_markup_join(pieces: tuple[Any, ...]) -> None:
    assert html_join(pieces) == markup_join(pieces)
    assert type(html_join(pieces)) is type(markup_join(pieces))


SOURCES = {
    "page.html.j2": (
        "{% import 'macros.html.j2' as m %}"
        "<p>{{ value }}|{{ nothing }}|{{ number }}|{{ safe }}|"
        "{{ raw | safe }}|{{ value ~ safe }}|{{ value ~ raw }}|{{ value ~ number }}</p>"
        "{{ m.box(value) }}{% call m.wrap() %}<i>{{ value }}</i>{% endcall %}"
        "{% set block %}<u>{{ value }}</u>{% endset %}{{ block }}{{ block | upper }}"
        "{% filter upper %}{{ value }}<s>{% endfilter %}"
        "{% autoescape false %}{{ value }}{% endautoescape %}"
        "{% autoescape flag %}{{ value }}{% endautoescape %}"
        "{% include 'part.html.j2' %}"
        "{% for item in items %}{{ loop.index }}{{ item }}{% else %}none{% endfor %}"
        "{{ shouts }}{{ 'const <' }}{{ 1 + 2 }}"
    ),
    "macros.html.j2": (
        "{% macro box(x) %}<div>{{ x }}</div>{% endmacro %}"
        "{% macro wrap() %}[{{ caller() }}]{% endmacro %}"
    ),
    "part.html.j2": "<em>{{ value }}</em>",
    "page.text.j2": "{{ value }}|{{ nothing }}|{{ number }}|{{ safe }}|{{ items | join(',') }}",
}
CONTEXT: dict[str, Any] = {
    "value": "<Tom & 'Jerry'>",
    "nothing": None,
    "number": 3.5,
    "safe": Markup("<b>ok</b>"),
    "raw": "<i>raw</i>",
    "flag": True,
    "items": ["<1>", None, 2],
    "shouts": Shouts(),
}


@pytest.mark.parametrize("name", ["page.html.j2", "page.text.j2"])
def test_templates_render_as_with_jinja_s_code_generator(
    write: Write, root: Path, name: str
) -> None:
    write(SOURCES)
    ours, theirs = Templates(root), Templates(root)
    for environment in (theirs.html, theirs.plain):
        environment.code_generator_class = jinja2.compiler.CodeGenerator
    environment_of = (lambda t: t.html) if ".html." in name else (lambda t: t.plain)
    template = environment_of(ours).get_template(name)
    reference = environment_of(theirs).get_template(name)
    assert "nc_" in environment_of(ours).compile(
        environment_of(ours).loader.get_source(environment_of(ours), name)[0], raw=True
    )
    for flag in (True, False):
        context = {**CONTEXT, "flag": flag}
        assert template.render(context) == reference.render(context)


def test_undefined_still_fails_on_output(write: Write, root: Path) -> None:
    from narrowcast.render import Links, Renderer, Signer

    write({"c/email.subject.j2": "Hi", "c/email.html.j2": "<p>\n{{ customer.nope }}</p>"})
    renderer = Renderer(Templates(root), Links(Signer(b"s" * 32), "https://x.example"))
    with pytest.raises(UndefinedVariable) as raised:
        renderer.render("email", {"id": "1"}, campaign={"name": "c"})
    assert raised.value.template is not None and raised.value.template.endswith("email.html.j2")
    assert raised.value.line == 2
