"""The links a template makes are the tokens ``Signer`` makes, byte for byte.

``MessageLinks`` signs from the ``Signer``'s MAC states without going through
its methods; links already sent must keep verifying, so both are compared with
each other and with HMAC-SHA256 written out from the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrowcast.render import HelperError, Links, MessageLinks, Signer

from .conftest import BASE_URL, SECRET


def _reference(purpose: str, claims: dict[str, Any]) -> str:
    """A token as the module docstring describes it, from the standard library only."""
    key = hmac.digest(SECRET, b"narrowcast-link/" + purpose.encode(), "sha256")
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return (body + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


ids = st.text(min_size=1, max_size=40)
urls = st.builds(lambda path: "https://shop.example.com/" + path, st.text(max_size=60))


@given(
    customer_id=ids,
    channel=st.sampled_from([None, "email", "push"]),
    purpose=st.sampled_from([None, "marketing", "transactional"]),
    outbox_id=st.one_of(st.none(), st.integers(0, 2**53), ids),
    url=urls,
)
def test_message_links_are_the_signers_tokens(
    customer_id: str, channel: str | None, purpose: str | None, outbox_id: Any, url: str
) -> None:
    signer = Signer(SECRET)
    links = Links(signer, BASE_URL)
    message = MessageLinks(links, customer_id, channel or "email", outbox_id, purpose)
    bare = MessageLinks(links, customer_id, channel, outbox_id, purpose)  # type: ignore[arg-type]

    assert message.track(url) == links.click(outbox_id, url)
    assert message.preferences == links.preferences(customer_id)
    assert bare.unsubscribe == links.unsubscribe(customer_id, channel=channel, purpose=purpose)

    unsubscribe: dict[str, Any] = {"p": "u", "c": customer_id}
    if channel is not None:
        unsubscribe["ch"] = channel
    if purpose is not None:
        unsubscribe["pu"] = purpose
    assert bare.unsubscribe == f"{BASE_URL}/u/" + _reference("unsubscribe", unsubscribe)
    assert message.preferences == f"{BASE_URL}/u/" + _reference(
        "preferences", {"p": "p", "c": customer_id}
    )
    assert message.track(url) == f"{BASE_URL}/r/" + _reference(
        "click", {"p": "c", "o": outbox_id, "u": url}
    )
    assert signer.verify_click(message.track(url).rsplit("/", 1)[1]).url == url


def test_each_link_is_signed_once_per_message() -> None:
    message = MessageLinks(Links(Signer(SECRET), BASE_URL), "c-1", "email", 7, "marketing")
    url = "https://shop.example.com/cart"
    assert message.track(url) is message.track(url)
    assert message.unsubscribe is message.unsubscribe
    assert message.preferences is message.preferences


@pytest.mark.parametrize("url", ["/cart", "mailto:a@example.com", "https:// x", 7, None])
def test_track_refuses_what_is_not_an_absolute_web_url(url: Any) -> None:
    message = MessageLinks(Links(Signer(SECRET), BASE_URL), "c-1", "email", 7, None)
    with pytest.raises(HelperError, match="track\\(\\) needs an absolute http"):
        message.track(url)
