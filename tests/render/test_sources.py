"""``Templates.sources``: the text of every file a message renders, includes followed."""

from __future__ import annotations

from narrowcast.render import Renderer
from tests.render.conftest import CAMPAIGN, Write


def test_follows_includes_imports_and_extends(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "{{ segment.cart.name }}",
            "spring/email.html.j2": (
                "{% extends 'layouts/base.html.j2' %}{% block body %}"
                "{% include 'partials/cart.html.j2' %}{% endblock %}"
            ),
            "layouts/base.html.j2": "<html><body>{% block body %}{% endblock %}</body></html>",
            "partials/cart.html.j2": (
                "{% from 'macros.j2' import score %}{{ score(segment.rfm_r) }}"
                "{% include 'partials/cart.html.j2' ignore missing %}"  # a cycle is fine
            ),
            "macros.j2": (
                "{% macro score(v) %}{{ v }} {{ segment.favourite_category }}{% endmacro %}"
            ),
            "unrelated/email.html.j2": "{{ segment.last_order }}",
        }
    )
    message = renderer.message(CAMPAIGN, "email")
    sources = renderer.templates.sources(message)
    assert sources is not None
    text = "\n".join(sources)
    for used in ("cart.name", "block body", "rfm_r", "favourite_category"):
        assert used in text
    assert "last_order" not in text  # a file the message never renders


def test_an_include_named_at_run_time_is_unknowable(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "Hi",
            "spring/email.html.j2": "{% include customer.locale ~ '/footer.j2' %}",
        }
    )
    message = renderer.message(CAMPAIGN, "email")
    assert renderer.templates.sources(message) is None
