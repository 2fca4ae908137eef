"""Signed link tokens: round trips, and every way a token can be wrong."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from narrowcast.render import Links, Signer, TokenExpired, TokenInvalid
from narrowcast.render.links import _HmacSha256

from .conftest import BASE_URL, SECRET

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
URL = "https://shop.example.com/p/voltix-smartwatch?utm_source=email&x=ü"


def test_click_round_trip(signer: Signer) -> None:
    token = signer.click(1234, URL)
    click = signer.verify_click(token)
    assert (click.outbox_id, click.url) == (1234, URL)


def test_click_token_for_a_preview_has_no_outbox_id(signer: Signer) -> None:
    assert signer.verify_click(signer.click(None, URL)).outbox_id is None


def test_string_outbox_ids_stay_strings(signer: Signer) -> None:
    assert signer.verify_click(signer.click("run-7:c-1", URL)).outbox_id == "run-7:c-1"


def test_unsubscribe_round_trip(signer: Signer) -> None:
    token = signer.unsubscribe("c-1", channel="email", purpose="marketing")
    found = signer.verify_unsubscribe(token)
    assert (found.customer_id, found.channel, found.purpose) == ("c-1", "email", "marketing")
    bare = signer.verify_unsubscribe(signer.unsubscribe("c-1"))
    assert (bare.customer_id, bare.channel, bare.purpose) == ("c-1", None, None)


def test_preferences_round_trip(signer: Signer) -> None:
    assert signer.verify_preferences(signer.preferences("c-1")).customer_id == "c-1"


def test_tokens_are_url_safe(signer: Signer) -> None:
    for token in (signer.click(1, URL), signer.unsubscribe("ü/+?"), signer.preferences("a b")):
        assert set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        )


def test_links_build_full_urls(signer: Signer) -> None:
    links = Links(signer, BASE_URL + "/")
    click = links.click(9, URL)
    assert click.startswith(f"{BASE_URL}/r/")
    assert signer.verify_click(click.rsplit("/", 1)[1]).url == URL
    assert links.unsubscribe("c-1").startswith(f"{BASE_URL}/u/")
    assert links.preferences("c-1").startswith(f"{BASE_URL}/u/")


def test_expiry(signer: Signer) -> None:
    token = signer.click(1, URL, expires_at=NOW + timedelta(days=30))
    assert signer.verify_click(token, now=NOW + timedelta(days=29)).url == URL
    with pytest.raises(TokenExpired, match=r"click token expired at 2026-12-20 12:00:00 UTC"):
        signer.verify_click(token, now=NOW + timedelta(days=30))


def test_expiry_is_signed(signer: Signer) -> None:
    token = signer.sign("click", {"o": 1, "u": URL}, expires_at=NOW)
    body, mac = token.split(".")
    unexpiring = signer.sign("click", {"o": 1, "u": URL}).split(".")[0]
    with pytest.raises(TokenInvalid, match="altered"):
        signer.verify(f"{unexpiring}.{mac}", "click")
    assert body != unexpiring


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_altered_payload(signer: Signer) -> None:
    token = signer.click(1, URL)
    with pytest.raises(TokenInvalid, match="signature does not match — the token was altered"):
        signer.verify_click(_flip(token, 5))


def test_altered_signature(signer: Signer) -> None:
    token = signer.click(1, URL)
    with pytest.raises(TokenInvalid, match="signature does not match"):
        signer.verify_click(_flip(token, len(token) - 3))


def test_another_url_cannot_be_substituted(signer: Signer) -> None:
    good = signer.click(1, URL)
    forged = signer.click(1, "https://evil.example.com/").split(".")[0]
    with pytest.raises(TokenInvalid, match="signature does not match"):
        signer.verify_click(f"{forged}.{good.split('.')[1]}")


@pytest.mark.parametrize("cut", [1, 5, 21])
def test_truncated_signature(signer: Signer, cut: int) -> None:
    token = signer.click(1, URL)
    with pytest.raises(
        TokenInvalid, match=r"signature has \d+ characters, expected 22 — .*cut short"
    ):
        signer.verify_click(token[:-cut])


def test_truncated_before_the_signature(signer: Signer) -> None:
    token = signer.click(1, URL)
    with pytest.raises(TokenInvalid, match="no signature part — the link was cut short"):
        signer.verify_click(token[: token.index(".") - 4])
    with pytest.raises(TokenInvalid, match="malformed"):
        signer.verify_click(token[: token.index(".") + 1])


@pytest.mark.parametrize("token", ["", "a.b.c", "abc def.xyz", "abc.xyz\n", "ab=c.xyz"])
def test_malformed(signer: Signer, token: str) -> None:
    with pytest.raises(TokenInvalid, match="malformed"):
        signer.verify_click(token)


def test_a_token_of_another_purpose_is_named(signer: Signer) -> None:
    with pytest.raises(TokenInvalid, match="this is a click token, not a unsubscribe token"):
        signer.verify_unsubscribe(signer.click(1, URL))
    with pytest.raises(TokenInvalid, match="this is a unsubscribe token, not a preferences token"):
        signer.verify_preferences(signer.unsubscribe("c-1"))


def test_another_secret(signer: Signer) -> None:
    other = Signer(b"another-secret-another-secret-xx")
    with pytest.raises(TokenInvalid, match="signed with another secret"):
        signer.verify_click(other.click(1, URL))


def test_purposes_use_separate_keys(signer: Signer) -> None:
    # The same claims signed for two purposes give two different signatures.
    a = signer.sign("unsubscribe", {"c": "c-1"}).split(".")[1]
    b = signer.sign("preferences", {"c": "c-1"}).split(".")[1]
    assert a != b


def test_the_mac_is_hmac_sha256() -> None:
    key = hmac.digest(SECRET, b"narrowcast-link/click", "sha256")
    for data in (b"", b"x", b"payload" * 40):
        assert _HmacSha256(key)(data) == hmac.new(key, data, hashlib.sha256).digest()
    long_key = b"k" * 100
    assert _HmacSha256(long_key)(b"x") == hmac.new(long_key, b"x", hashlib.sha256).digest()


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Signer(b"short")


def test_unsubscribe_and_preferences_expire_too(signer: Signer) -> None:
    later = NOW + timedelta(days=1)
    token = signer.unsubscribe("c-1", channel="email", expires_at=later)
    assert signer.verify_unsubscribe(token, now=NOW).channel == "email"
    with pytest.raises(TokenExpired):
        signer.verify_unsubscribe(token, now=later)
    with pytest.raises(TokenExpired):
        signer.verify_preferences(signer.preferences("c-1", expires_at=later), now=later)
