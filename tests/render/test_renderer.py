"""Each channel's parts, the template context, escaping, and signed links in messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrowcast.render import (
    PARTS,
    InvalidPart,
    MissingPart,
    Renderer,
    RenderError,
    TemplateFailed,
    required_parts,
)

from .conftest import CAMPAIGN, Write, customer


def _render(renderer: Renderer, channel: str, **kwargs: Any) -> dict[str, Any]:
    person = customer(**kwargs.pop("changes", {}))
    return renderer.render(channel, person, campaign=CAMPAIGN, **kwargs)


def test_required_parts() -> None:
    assert {channel: required_parts(channel) for channel in PARTS} == {
        "email": ("subject", "html"),
        "push": ("body",),
        "in_app": ("body",),
        "web": ("body",),
        "webhook": ("body",),
    }


def test_email(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "Spring for {{ customer.first_name }}\n",
            "spring/email.preheader.j2": "Up to 30% off",
            "spring/email.html.j2": "<p>Hi {{ customer.first_name }}</p>",
            "spring/email.text.j2": "Hi {{ customer.first_name }}\n\n\n\nBye   \n",
        }
    )
    assert _render(renderer, "email") == {
        "subject": "Spring for Ana",
        "preheader": "Up to 30% off",
        "html": "<p>Hi Ana</p>",
        "text": "Hi Ana\n\nBye",
    }


def test_email_optional_parts(renderer: Renderer, write: Write) -> None:
    write({"spring/email.subject.j2": "S", "spring/email.html.j2": "<p>H</p>"})
    assert _render(renderer, "email") == {
        "subject": "S",
        "preheader": None,
        "html": "<p>H</p>",
        "text": "H",
    }


def test_push(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.title.j2": "Spring sale",
            "spring/push.body.j2": "{{ customer.first_name }}, 30% off {{ customer.lifestyle }}",
            "spring/push.image.j2": "https://cdn.example.com/spring.png",
            "spring/push.link.j2": "myshop://sale/spring",
            "spring/push.data.j2": '{"campaign": {{ campaign.name | tojson }}, "screen": "sale"}',
        }
    )
    assert _render(renderer, "push") == {
        "title": "Spring sale",
        "body": "Ana, 30% off adventurer",
        "image": "https://cdn.example.com/spring.png",
        "link": "myshop://sale/spring",
        "data": {"campaign": "spring", "screen": "sale"},
    }


def test_push_data_values_must_be_strings(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/push.body.j2": "b", "spring/push.data.j2": '{"n": 3, "ok": "x", "b": true}'})
    with pytest.raises(InvalidPart) as info:
        _render(renderer, "push")
    assert str(info.value).startswith(
        f"{root}/spring/push.data.j2: data values must be strings (push data is text); "
        "not strings: n=3, b=true"
    )


def test_push_data_must_be_an_object(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "b", "spring/push.data.j2": '["a"]'})
    with pytest.raises(InvalidPart, match="data must render to a JSON object, got list"):
        _render(renderer, "push")


def test_in_app(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/in_app.title.j2": "New in",
            "spring/in_app.body.j2": "Picked for {{ customer.first_name }}",
            "spring/in_app.cta_label.j2": "Show me",
            "spring/in_app.cta_url.j2": "{{ track('https://shop.example.com/new') }}",
            "spring/in_app.image.j2": "",
        }
    )
    message = _render(renderer, "in_app", outbox_id=3)
    assert set(message) == {"title", "body", "cta_label", "cta_url", "image"}
    assert message["image"] is None  # rendered empty: no image
    assert message["cta_url"].startswith("https://news.example.com/r/")


def test_web(renderer: Renderer, write: Write) -> None:
    write({"spring/web.body.j2": "Welcome back", "spring/web.title.j2": "Hi"})
    assert _render(renderer, "web") == {
        "title": "Hi",
        "body": "Welcome back",
        "cta_label": None,
        "cta_url": None,
        "placement": "banner",
        "survey": None,
    }
    write({"spring/web.placement.j2": " Modal\n", "spring/web.survey.j2": "nps"})
    renderer.templates.reload()
    message = _render(renderer, "web")
    assert (message["placement"], message["survey"]) == ("modal", "nps")


def test_web_placement_must_be_known(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/web.body.j2": "b", "spring/web.placement.j2": "popup"})
    with pytest.raises(InvalidPart) as info:
        _render(renderer, "web")
    assert str(info.value) == (
        f"{root}/spring/web.placement.j2: placement must be one of banner, modal, toast, "
        "rendered 'popup'"
    )


def test_cta_parts_come_in_pairs(renderer: Renderer, write: Write) -> None:
    write({"spring/web.body.j2": "b", "spring/web.cta_label.j2": "Go"})
    with pytest.raises(MissingPart, match="web has a cta_label template but no cta_url template"):
        _render(renderer, "web")


def test_cta_parts_render_in_pairs(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/web.body.j2": "b",
            "spring/web.cta_label.j2": "Go",
            "spring/web.cta_url.j2": "{% if segment.url %}{{ segment.url }}{% endif %}",
        }
    )
    with pytest.raises(InvalidPart, match="cta_label rendered but cta_url is empty"):
        _render(renderer, "web", segment={"url": ""})


@pytest.mark.parametrize("url", ["javascript:alert(1)", "two words", "no-scheme"])
def test_urls_are_checked(renderer: Renderer, write: Write, url: str) -> None:
    write({"spring/push.body.j2": "b", "spring/push.link.j2": url})
    with pytest.raises(InvalidPart, match="link must be one URL"):
        _render(renderer, "push")


def test_webhook(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/webhook.body.j2": """{
  "customer": {{ customer.id | tojson }},
  "name": {{ customer.first_name | tojson }},
  "tags": [{{ customer.persona | tojson }}],
  "score": {{ segment.score }}
}"""
        }
    )
    message = _render(
        renderer, "webhook", changes={"first_name": 'Ana "la" <b>'}, segment={"score": 7}
    )
    assert message == {
        "body": {"customer": "c-1", "name": 'Ana "la" <b>', "tags": ["vip"], "score": 7}
    }


def test_webhook_that_is_not_json(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/webhook.body.j2": '{\n  "name": "{{ customer.first_name }}"\n}'})
    with pytest.raises(InvalidPart) as info:
        _render(renderer, "webhook", changes={"first_name": 'Ana "la"'})
    message = str(info.value)
    assert message.startswith(f"{root}/spring/webhook.body.j2: body did not render to valid JSON")
    assert "at line 2 of the output" in message and "tojson" in message


def test_unknown_channel(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match=r"unknown channel 'mail' — did you mean 'email'\?"):
        _render(renderer, "mail")


def test_escaping_in_html_only(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/email.subject.j2": "For {{ customer.first_name }}",
            "spring/email.html.j2": "<p>For {{ customer.first_name }}</p>",
        }
    )
    message = _render(renderer, "email", changes={"first_name": "Tom & <Jerry>"})
    assert message["html"] == "<p>For Tom &amp; &lt;Jerry&gt;</p>"
    assert message["text"] == "For Tom & <Jerry>"
    assert message["subject"] == "For Tom & <Jerry>"


def test_one_line_parts_cannot_carry_a_header(renderer: Renderer, write: Write) -> None:
    write({"spring/email.subject.j2": "Hi {{ customer.first_name }}", "spring/email.html.j2": "x"})
    message = _render(renderer, "email", changes={"first_name": "Ana\r\nBcc: all@example.com"})
    assert message["subject"] == "Hi Ana Bcc: all@example.com"


def test_context(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.body.j2": (
                "{{ customer.id }} {{ customer.lifestyle }} {{ customer.country }} "
                "{{ segment.name }} {{ segment.lead_score }} {{ campaign.description }} "
                "{{ variant }}"
            )
        }
    )
    message = _render(renderer, "push", segment={"name": "hot", "lead_score": 82}, variant=None)
    assert message["body"] == "c-1 adventurer ES hot 82 Spring sale"


def test_columns_win_over_attributes(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "{{ customer.country }} {{ customer.items }}"})
    changes = {"attributes": {"country": "XX", "items": 3}}
    assert _render(renderer, "push", changes=changes)["body"] == "ES 3"


def test_attributes_may_arrive_as_json_text(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "{{ customer.lifestyle }}"})
    changes = {"attributes": '{"lifestyle": "tech_lover"}'}
    assert _render(renderer, "push", changes=changes)["body"] == "tech_lover"


def test_signed_links_in_a_message(renderer: Renderer, write: Write) -> None:
    write(
        {
            "spring/push.body.j2": "{{ links.unsubscribe }} {{ links.preferences }}",
            "spring/push.link.j2": "{{ track('https://shop.example.com/sale?x=1&y=2') }}",
        }
    )
    message = _render(renderer, "push", outbox_id=77)
    signer = renderer.links.signer
    unsubscribe, preferences = message["body"].split()
    found = signer.verify_unsubscribe(unsubscribe.rsplit("/", 1)[1])
    assert (found.customer_id, found.channel, found.purpose) == ("c-1", "push", "marketing")
    assert signer.verify_preferences(preferences.rsplit("/", 1)[1]).customer_id == "c-1"
    click = signer.verify_click(message["link"].rsplit("/", 1)[1])
    assert (click.outbox_id, click.url) == (77, "https://shop.example.com/sale?x=1&y=2")


def test_track_needs_an_absolute_url(renderer: Renderer, write: Write, root: Path) -> None:
    write({"spring/push.body.j2": "b", "spring/push.link.j2": "\n{{ track('/sale') }}"})
    with pytest.raises(TemplateFailed) as info:
        _render(renderer, "push")
    assert str(info.value) == (
        f"{root}/spring/push.link.j2:2: track() needs an absolute http:// or https:// URL, "
        "got '/sale'"
    )


def test_a_campaign_needs_a_name(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="needs a 'name'"):
        renderer.render("push", customer(), campaign={"description": "x"})


def test_a_customer_needs_an_id(renderer: Renderer, write: Write) -> None:
    write({"spring/push.body.j2": "b"})
    person = customer()
    del person["id"]
    with pytest.raises(RenderError, match="needs an 'id'"):
        renderer.render("push", person, campaign=CAMPAIGN)
