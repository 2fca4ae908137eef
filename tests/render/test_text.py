"""The email text part, derived from the html template source at compile time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrowcast.render import Renderer, Templates
from narrowcast.render.text import derive_text_source

from .conftest import CAMPAIGN, Write, customer


def _text(renderer: Renderer, write: Write, html: str, **context: Any) -> str:
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    segment = context.pop("segment", {})
    message = renderer.render(
        "email", customer(**context), campaign=CAMPAIGN, segment=segment, outbox_id=1
    )
    assert isinstance(message["text"], str)
    return message["text"]


def test_structure(renderer: Renderer, write: Write) -> None:
    html = """<!doctype html>
<html><head><title>Spring</title><style>p { color: red }</style></head>
<body>
  <span style="display: none">hidden preheader</span>
  <h1>Spring   sale</h1>
  <p>Hello <b>{{ customer.first_name }}</b>,<br>welcome back.</p>
  <ul><li>One</li><li>Two <i>items</i></li></ul>
  <ol><li>First</li><li>Second</li></ol>
  <p>Fish &amp; chips&nbsp;&lt;3</p>
  <hr>
  <table><tr><td>Boots</td><td>2</td></tr><tr><td>Hat</td><td>1</td></tr></table>
  <script>alert(1)</script>
</body></html>"""
    assert _text(renderer, write, html) == (
        "Spring sale\n\n"
        "Hello Ana,\nwelcome back.\n\n"
        "- One\n- Two items\n\n"
        "1. First\n2. Second\n\n"
        "Fish & chips <3\n\n"
        "----\n\n"
        "Boots 2\nHat 1"
    )


def test_links(renderer: Renderer, write: Write) -> None:
    html = (
        '<p><a href="https://shop.example.com/sale">the sale</a></p>'
        '<p><a href="https://shop.example.com/">https://shop.example.com/</a></p>'
        '<p><a href="#top">back to top</a> <a href="">nothing</a></p>'
        '<p><a href="mailto:help@example.com">write to us</a></p>'
        '<p><a href="https://shop.example.com/"><img src="logo.png" alt="Our shop"></a></p>'
        '<p><a href="{{ links.unsubscribe }}">Unsubscribe</a></p>'
    )
    text = _text(renderer, write, html).split("\n\n")
    assert text[:5] == [
        "the sale (https://shop.example.com/sale)",
        "https://shop.example.com/",
        "back to top nothing",
        "write to us (mailto:help@example.com)",
        "Our shop (https://shop.example.com/)",
    ]
    assert text[5].startswith("Unsubscribe (https://news.example.com/u/")


def test_tracked_links_are_shared_with_the_html(renderer: Renderer, write: Write) -> None:
    html = "<a href=\"{{ track('https://shop.example.com/cart') }}\">Your cart</a>"
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": html})
    message = renderer.render("email", customer(), campaign=CAMPAIGN, outbox_id=5)
    url = message["html"].split('"')[1]
    assert message["text"] == f"Your cart ({url})"
    token = url.rsplit("/", 1)[1]
    assert renderer.links.signer.verify_click(token).url == "https://shop.example.com/cart"


def test_no_escaping_in_the_text(renderer: Renderer, write: Write) -> None:
    text = _text(renderer, write, "<p>Hi {{ customer.first_name }}</p>", first_name="Ann & <Bo>")
    assert text == "Hi Ann & <Bo>"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], "Your picks:\n\nThanks"),
        (["boots"], "Your picks:\n\n- boots\n\nThanks"),
        (["boots", "hat"], "Your picks:\n\n- boots\n- hat\n\nThanks"),
    ],
)
def test_loops(renderer: Renderer, write: Write, items: list[str], expected: str) -> None:
    html = """<p>Your picks:</p>
<ul>
{% for item in segment.picks %}
  <li>{{ item }}</li>
{% endfor %}
</ul>
<p>Thanks</p>"""
    assert _text(renderer, write, html, segment={"picks": items}) == expected


@pytest.mark.parametrize(
    ("vip", "expected"), [(True, "Hi Ana,\n\nYou are VIP.\n\nBye"), (False, "Hi Ana,\n\nBye")]
)
def test_conditions(renderer: Renderer, write: Write, vip: bool, expected: str) -> None:
    html = """<p>Hi {{ customer.first_name }},</p>
{% if segment.vip %}
<p>You are <b>VIP</b>.</p>
{% endif %}
<p>Bye</p>"""
    assert _text(renderer, write, html, segment={"vip": vip}) == expected


def test_inline_conditions_keep_word_spacing(renderer: Renderer, write: Write) -> None:
    html = "<p>Dear {% if segment.vip %}VIP {% endif %}friend</p>"
    assert _text(renderer, write, html, segment={"vip": True}) == "Dear VIP friend"
    assert _text(renderer, write, html, segment={"vip": False}) == "Dear friend"


def test_statements_in_hidden_parts_and_comments_still_balance(
    renderer: Renderer, write: Write
) -> None:
    html = """<head><style>{% if segment.dark %}body { background: #000 }{% endif %}</style></head>
<!--[if mso]>{% if segment.outlook %}<table>{% endif %}<![endif]-->
<p class="{% if segment.vip %}gold{% endif %}">Hello</p>"""
    assert _text(renderer, write, html, segment={"dark": 1, "outlook": 1, "vip": 1}) == "Hello"


def test_includes_and_macros_are_derived_too(renderer: Renderer, write: Write) -> None:
    write(
        {
            "shared/footer.html.j2": '<p><a href="{{ links.preferences }}">Preferences</a></p>',
            "shared/macros.html.j2": (
                '{% macro button(url, label) %}<a href="{{ url }}">{{ label }}</a>{% endmacro %}'
            ),
        }
    )
    html = """{% import 'shared/macros.html.j2' as ui %}
<h2>Deals</h2>
<p>{{ ui.button('https://shop.example.com/deals', 'See deals') }}</p>
{% include 'shared/footer.html.j2' %}"""
    text = _text(renderer, write, html)
    assert text.startswith("Deals\n\nSee deals (https://shop.example.com/deals)\n\nPreferences (")
    assert "<" not in text


def test_derived_once_and_cached(renderer: Renderer, write: Write) -> None:
    write({"spring/email.subject.j2": "Hi", "spring/email.html.j2": "<p>Hi</p>"})
    first = renderer.message(CAMPAIGN, "email", customer=customer())
    again = renderer.message(CAMPAIGN, "email", customer=customer(first_name="Bo"))
    text = dict((part.name, compiled) for part, compiled in first.parts)["text"]
    assert text is not None and text.derived and text.name == "spring/email.html.j2"
    assert first is again  # resolution and compiled templates are reused


def test_constructs_keep_their_html_line(root: Path, write: Write) -> None:
    html = """<html>
<body>
  <h1>{{ campaign.name }}</h1>
  <p>
    Hi {{ customer.first_name }},
    <a href="{{ track('https://x.example/a') }}">
      {{ segment.cart.name }}</a>
  </p>
  {% if segment.vip %}<p>VIP</p>{% endif %}
</body>
</html>"""
    write({"a.html.j2": html})
    environment = Templates(root).text
    derived = derive_text_source(html, environment)
    lines = {
        value.strip(): line
        for line, token, value in environment.lex(derived)
        if token == "name" and value in ("campaign", "customer", "segment", "track")
    }
    # A link's URL is written after its label, so it takes the line where the label ends.
    assert lines == {"campaign": 3, "customer": 5, "track": 7, "segment": 9}
