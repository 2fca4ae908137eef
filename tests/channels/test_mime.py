"""The RFC 5322 email every email path shares: structure, headers, preheader, stable ids."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from narrowcast.channels import Sender, build_email
from narrowcast.channels.mime import html_with_preheader

from .messages import NOW, email

SENDER = Sender.parse("Example Shop <news@shop.example>", reply_to="help@shop.example")


def _parsed(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_multipart_alternative_text_then_html() -> None:
    raw = bytes(build_email(email(7), SENDER, date=NOW))
    assert b"\r\n" in raw  # SMTP line endings, as RFC 5322 wants
    parsed = _parsed(raw)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().replace("\r\n", "\n").strip() == "Hello 7\nOfertas ñ €"
    assert "<h1>Hello 7</h1>" in parts[1].get_content()


def test_headers() -> None:
    parsed = _parsed(bytes(build_email(email(7, to="Ana <ana@example.com>"), SENDER, date=NOW)))
    assert parsed["From"] == "Example Shop <news@shop.example>"
    assert parsed["To"] == "Ana <ana@example.com>"
    assert parsed["Reply-To"] == "help@shop.example"
    assert parsed["Subject"] == "Spring sale for you, #7"
    assert parsed["Date"] == "Mon, 02 Mar 2026 09:30:00 +0000"
    assert parsed["List-Unsubscribe"] == "<https://shop.example/u/tok7>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Content-Language"] == "es-ES"
    assert parsed["X-Narrowcast-Outbox-Id"] == "7"
    assert parsed["Message-ID"].startswith("<nc.7.") and parsed["Message-ID"].endswith(
        "@shop.example>"
    )


def test_a_long_unsubscribe_url_stays_a_readable_url() -> None:
    """Signed links are long; folding them into an encoded-word would break one-click."""
    url = "https://shop.example/unsubscribe/" + "eyJwIjoidSIsImMiOiJkZW1vLTAwMDAyOCJ9" * 4
    long = dataclasses.replace(email(7), unsubscribe_url=url)
    raw = bytes(build_email(long, SENDER, date=NOW))
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in raw
    assert _parsed(raw)["List-Unsubscribe"] == f"<{url}>"


def test_the_message_id_is_the_same_for_every_attempt() -> None:
    first = build_email(email(7), SENDER, date=NOW)["Message-ID"]
    assert build_email(email(7), SENDER)["Message-ID"] == first
    assert build_email(email(8), SENDER)["Message-ID"] != first


def test_no_unsubscribe_url_no_list_headers() -> None:
    plain = dataclasses.replace(email(3), unsubscribe_url=None)
    built = build_email(plain, SENDER)
    assert built["List-Unsubscribe"] is None and built["List-Unsubscribe-Post"] is None


def test_the_preheader_is_hidden_right_after_body() -> None:
    html = html_with_preheader('<html><body class="x"><p>Hi</p></body></html>', "Save <40%>")
    assert html.startswith('<html><body class="x"><div style="display:none')
    assert "Save &lt;40%&gt;" in html and html.index("Save") < html.index("<p>Hi</p>")
    assert html_with_preheader("<p>Hi</p>", "Pre").startswith('<div style="display:none')
    assert html_with_preheader("<p>Hi</p>", None) == "<p>Hi</p>"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject": ""}, "'subject'"),
        ({"html": None}, "'html'"),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "line break"),
    ],
)
def test_bad_messages_are_refused(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        build_email(email(1, **change), SENDER)


def test_a_bad_address_is_refused() -> None:
    with pytest.raises(ValueError, match="not an email address"):
        build_email(email(1, to="nobody"), SENDER)
    with pytest.raises(ValueError, match="not an email address"):
        Sender.parse("Shop")
