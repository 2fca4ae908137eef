"""The html and its derived text rendered in one pass give what two passes give."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from narrowcast.render import (
    Links,
    MessageTemplates,
    Renderer,
    Signer,
    Templates,
    UndefinedVariable,
)
from narrowcast.render.codegen import Diverged
from narrowcast.render.sandbox import render_with_text

from .conftest import BASE_URL, CAMPAIGN, SECRET, Write, customer

REPO = Path(__file__).resolve().parents[2]


def _two_pass(message: MessageTemplates) -> MessageTemplates:
    """``message`` rendering its html and derived text one after the other."""
    parts = tuple(
        (part, dataclasses.replace(compiled, with_text=None) if compiled else None)
        for part, compiled in message.parts
    )
    return dataclasses.replace(message, parts=parts)


def _one_pass(message: MessageTemplates) -> bool:
    return any(compiled and compiled.with_text for _, compiled in message.parts)


def _context(renderer: Renderer, segment: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return renderer.context(
        customer(**changes), campaign=CAMPAIGN, channel="email", segment=segment, outbox_id=3
    )


def _both(
    renderer: Renderer, segment: dict[str, Any], **changes: Any
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The message rendered both ways, and whether the one-pass template was made."""
    message = renderer.message(CAMPAIGN, "email", customer=customer(**changes))
    context = _context(renderer, segment, **changes)
    return message.render(context), _two_pass(message).render(context), _one_pass(message)


SEGMENT: dict[str, Any] = {
    "vip": True,
    "items": ["boots", "hat & scarf", "<socks>"],
    "cart": {"name": "boots", "value": 59.9, "currency": "EUR", "product": "b-1"},
    "count": 3,
    "none": None,
    "word": "a&b",
}

ZIPPED = {
    "loops and conditions": """<h1>Hi {{ customer.first_name }}</h1>
{% if segment.vip %}<p>You are <b>VIP</b>, {{ customer.first_name }}.</p>
{% elif segment.count > 2 %}<p>Almost</p>
{% else %}<p>Not yet</p>{% endif %}
<ul>
{% for item in segment.items %}
  <li><a href="{{ track('https://shop.example.com/' ~ item) }}">{{ item }}</a> {{ loop.index }}</li>
{% else %}
  <li>nothing</li>
{% endfor %}
</ul>
{% set total = segment.cart.value %}{% with n = segment.count %}
<p>{{ n }} for {{ total | money('EUR') }}</p>{% endwith %}
<p>{{ segment.none }}{{ segment.word }} {{ "{" }}</p>""",
    "hidden parts and attributes": """<head><title>{{ segment.cart.name }}</title>
<style>{% if segment.vip %}b { color: red }{% endif %}</style></head>
<span style="display:none">{{ segment.word }}</span>
<p class="{% if segment.vip %}gold{% endif %}">{{ segment.cart.name }}
<a href="{{ links.unsubscribe }}">{{ links.unsubscribe }}</a></p>""",
    "the same value twice at one point": (
        "<p>{{ customer.first_name }} {{ customer.first_name | upper }} {{ customer.first_name }}"
        " <a href=\"{{ track('https://x.example/a') }}\">{{ track('https://x.example/a') }}</a></p>"
    ),
}
APART = {
    "a macro": (
        '{% macro b(u) %}<a href="{{ u }}">go</a>{% endmacro %}<p>{{ b("https://x.example") }}</p>'
    ),
    "a set block": "{% set x %}<b>{{ customer.first_name }}</b>{% endset %}<p>{{ x }}</p>",
    "a filter block": "{% filter upper %}<p>{{ customer.first_name }}</p>{% endfilter %}",
    "join, which escapes in html only": "<p>{{ segment.items | join(', ') }}</p>",
    "an autoescape block": "{% autoescape false %}<p>{{ segment.word }}</p>{% endautoescape %}",
    "an include": "<p>Hi</p>{% include 'spring/footer.html.j2' %}",
    "a recursive loop": "{% for i in segment.items recursive %}<p>{{ i }}</p>{% endfor %}",
}


@pytest.mark.parametrize("html", ZIPPED.values(), ids=ZIPPED.keys())
def test_zipped_templates_render_as_two_passes(renderer: Renderer, write: Write, html: str) -> None:
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    one, two, zipped = _both(renderer, SEGMENT)
    assert zipped
    assert one == two
    assert one["text"] and "<" not in one["text"].replace("<socks>", "")


@pytest.mark.parametrize("html", APART.values(), ids=APART.keys())
def test_what_cannot_be_zipped_is_rendered_in_two_passes(
    renderer: Renderer, write: Write, html: str
) -> None:
    write(
        {
            "spring/email.subject.j2": "Hi",
            "spring/email.html.j2": html,
            "spring/footer.html.j2": "<p>{{ links.preferences }}</p>",
        }
    )
    one, two, zipped = _both(renderer, SEGMENT)
    assert not zipped
    assert one == two


def test_a_join_of_more_than_text_renders_that_message_in_two_passes(
    renderer: Renderer, write: Write
) -> None:
    html = "<p><a href=\"{{ track('https://shop.example.com/p/' ~ segment.sku) }}\">see</a></p>"
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    message = renderer.message(CAMPAIGN, "email", customer=customer())
    html_part = next(compiled for _, compiled in message.parts if compiled and compiled.with_text)
    assert html_part.with_text is not None
    for sku, diverges in (("b-1", False), ("a&b", False), (7, True), (Markup("<i>"), True)):
        # In html '~' escapes anything but plain text (7 becomes Markup('7')); in text not.
        variables = {**message.globals, **_context(renderer, {"sku": sku})}
        if diverges:
            with pytest.raises(Diverged):
                render_with_text(html_part.with_text, variables)
        else:
            render_with_text(html_part.with_text, variables)
        one, two, _ = _both(renderer, {"sku": sku})
        assert one == two
        assert one["text"].startswith("see (https://news.example.com/r/")


def test_errors_name_the_html_line(renderer: Renderer, write: Write, root: Path) -> None:
    html = "<p>Hi</p>\n<p>{{ customer.first_name }}</p>\n<p>{{ segment.cart.nme }}</p>"
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    assert _one_pass(renderer.message(CAMPAIGN, "email", customer=customer()))
    with pytest.raises(UndefinedVariable) as raised:
        renderer.render("email", customer(), campaign=CAMPAIGN, segment=SEGMENT, outbox_id=1)
    assert str(raised.value).startswith(
        f"{root}/spring/email.html.j2:3: undefined variable 'segment.cart.nme'"
        " — did you mean 'name'?"
    )
    assert "derived" not in str(raised.value)


def test_the_shipped_emails_render_in_one_pass() -> None:
    renderer = Renderer(Templates(REPO / "templates"), Links(Signer(SECRET), BASE_URL))
    for locale in ("en-GB", "es-ES", "pl-PL"):
        message = renderer.message({"name": "cart_abandoner"}, "email", customer={"locale": locale})
        assert _one_pass(message), locale


# -- generated templates ------------------------------------------------------------

_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from(["", " ", "a", "Tom & Jerry", "<b>x</b>", "two\nlines", "  pad  ", "é€"]),
)
_EXPRESSIONS = st.sampled_from(
    [
        "{{ customer.first_name }}",
        "{{ segment.a }}",
        "{{ segment.b }}",
        "{{ segment.a ~ '/' ~ segment.b }}",
        "{{ segment.a | default('x') }}",
        "{{ track('https://shop.example.com/' ~ segment.a) }}",
        "{{ links.unsubscribe }}",
        "{{ item }}",
        "{{ loop.index if loop is defined else 0 }}",
        "{{ '{' }}",
    ]
)
_HTML = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<h2>",
        "</h2>",
        "<br>",
        "<ul>",
        "</ul>",
        "<ol>",
        "</ol>",
        "<li>",
        "</li>",
        "<b>",
        "</b>",
        "<a href=\"{{ track('https://x.example/' ~ segment.b) }}\">",
        '<a href="{{ links.preferences }}">',
        '<a href="#top">',
        "</a>",
        '<span style="display:none">',
        "</span>",
        "<title>",
        "</title>",
        "<td>",
        "</td>",
        "<hr>",
        "word",
        "two words",
        " ",
        "\n",
        "  \n  ",
        "&amp;",
    ]
)


def _statement(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda body: "{% if segment.a %}" + body + "{% endif %}", inner),
        st.builds(
            lambda a, b: "{% if segment.b %}" + a + "{% else %}" + b + "{% endif %}", inner, inner
        ),
        st.builds(lambda body: "{% for item in segment.items %}" + body + "{% endfor %}", inner),
        st.builds(lambda body: "{% set x = segment.a %}" + body, inner),
        st.builds(lambda body: "{% with y = segment.b %}" + body + "{% endwith %}", inner),
    )


_TEMPLATES = st.recursive(
    st.lists(st.one_of(_HTML, _EXPRESSIONS), max_size=8).map("".join),
    lambda inner: st.lists(st.one_of(_HTML, _EXPRESSIONS, _statement(inner)), max_size=6).map(
        "".join
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    html=_TEMPLATES,
    a=_VALUES,
    b=_VALUES,
    items=st.lists(_VALUES, max_size=3),
    first_name=_VALUES,
)
def test_generated_templates_render_as_two_passes(
    tmp_path_factory: pytest.TempPathFactory,
    html: str,
    a: Any,
    b: Any,
    items: list[Any],
    first_name: Any,
) -> None:
    root = tmp_path_factory.mktemp("templates")
    (root / "spring").mkdir()
    (root / "spring" / "email.subject.j2").write_text("Hi")
    (root / "spring" / "email.html.j2").write_text(html or "x")
    renderer = Renderer(Templates(root), Links(Signer(SECRET), BASE_URL))
    segment = {"a": a, "b": b, "items": items}
    try:
        two_pass = _two_pass(renderer.message(CAMPAIGN, "email", customer=customer()))
        expected: Any = two_pass.render(
            renderer.context(
                customer(first_name=first_name),
                campaign=CAMPAIGN,
                channel="email",
                segment=segment,
                outbox_id=3,
            )
        )
    except Exception as exc:  # noqa: BLE001  (the same error either way)
        expected = str(exc)
    who = customer(first_name=first_name)
    try:
        got: Any = renderer.render("email", who, campaign=CAMPAIGN, segment=segment, outbox_id=3)
    except Exception as exc:  # noqa: BLE001
        got = str(exc)
    assert got == expected
