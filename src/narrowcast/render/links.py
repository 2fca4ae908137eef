"""Signed links: click tracking, unsubscribe and preferences.

A token is ``PAYLOAD.MAC``: the payload is compact JSON in url-safe base64
(no padding), the MAC the first 16 bytes of HMAC-SHA256 over the encoded
payload, also url-safe base64 — 22 characters. Each purpose signs with its own
key derived from the secret (``HMAC(secret, "narrowcast-link/" + purpose)``),
so a click token can never be replayed as an unsubscribe token, and the
purpose is also inside the payload so that ``verify`` can say which kind of
token it was given. An optional expiry (``x``, Unix seconds) is part of the
signed payload.

    click        {base_url}/r/{token}             payload: outbox id, the exact URL
    unsubscribe  {base_url}/u/{token}             payload: customer id, channel?, purpose?
    preferences  {base_url}/u/{token}             payload: customer id

Unsubscribe and preferences tokens share ``/u/``: one page verifies either
(``api/pages.py``) — the unsubscribe button and the preference centre, and
RFC 8058 one-click POSTs. Links sent before that went to ``/unsubscribe/``
and ``/preferences/``, which the API still serves.

The redirect endpoint verifies a click token and redirects only to the URL
inside it — a URL the message really contained — and records the click for
that outbox row. A token made for a preview (``outbox_id=None``) redirects
without recording anything.

``verify`` raises ``TokenInvalid`` (truncated, altered, malformed, another
purpose) or ``TokenExpired``; the HTTP API maps them to 400 and 410.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from narrowcast.render.errors import HelperError, TokenExpired, TokenInvalid

Purpose = Literal["click", "unsubscribe", "preferences"]
PURPOSES: tuple[Purpose, ...] = ("click", "unsubscribe", "preferences")
PATHS: dict[Purpose, str] = {
    "click": "/r/",
    "unsubscribe": "/u/",
    "preferences": "/u/",
}
"""Where each kind of token goes under the base URL (the HTTP API routes these)."""

_CODES: dict[Purpose, str] = {"click": "c", "unsubscribe": "u", "preferences": "p"}
_PURPOSE_OF_CODE = {code: purpose for purpose, code in _CODES.items()}
_MAC_BYTES = 16
_MAC_CHARS = 22  # len(base64 of 16 bytes) without padding
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Click:
    """A verified click token: which message it belongs to and where it goes."""

    outbox_id: int | str | None
    url: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """A verified unsubscribe token: who, and optionally from which channel and purpose."""

    customer_id: str
    channel: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Preferences:
    """A verified preferences token: whose preference page it opens."""

    customer_id: str


class Signer:
    """Signs and verifies link tokens with one secret."""

    def __init__(self, secret: bytes | str) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("a link secret needs at least 16 bytes")
        self._macs = {
            purpose: _HmacSha256(hmac.digest(raw, b"narrowcast-link/" + purpose.encode(), "sha256"))
            for purpose in PURPOSES
        }

    # -- generic ---------------------------------------------------------------

    def sign(
        self,
        purpose: Purpose,
        claims: Mapping[str, Any],
        *,
        expires_at: datetime | None = None,
    ) -> str:
        """A token carrying ``claims`` (JSON values) for ``purpose``, optionally expiring."""
        payload: dict[str, Any] = {"p": _CODES[purpose], **claims}
        if expires_at is not None:
            payload["x"] = int(_aware(expires_at).timestamp())
        return self._token(purpose, orjson.dumps(payload))

    def _token(self, purpose: Purpose, payload: bytes) -> str:
        return self._macs[purpose].token(payload)

    def verify(
        self, token: str, purpose: Purpose, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """The claims inside a genuine, unexpired ``purpose`` token.

        Raises ``TokenInvalid`` or ``TokenExpired`` with a message for the log.
        """
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            if isinstance(token, str) and token and "." not in token:
                raise TokenInvalid(
                    f"{purpose} token has no signature part — the link was cut short"
                )
            raise TokenInvalid(
                f"{purpose} token is malformed: a token is two url-safe base64 parts "
                "joined by '.' (was the link copied whole?)"
            )
        body, _, mac_text = token.partition(".")
        if len(mac_text) != _MAC_CHARS:
            raise TokenInvalid(
                f"{purpose} token signature has {len(mac_text)} characters, expected "
                f"{_MAC_CHARS} — the link was cut short or altered"
            )
        mac = _unb64(mac_text, purpose)
        data = body.encode("ascii")
        if not hmac.compare_digest(mac, self._mac(purpose, data)):
            other = next(
                (
                    p
                    for p in PURPOSES
                    if p != purpose and hmac.compare_digest(mac, self._mac(p, data))
                ),
                None,
            )
            if other is not None:
                raise TokenInvalid(f"this is a {other} token, not a {purpose} token")
            raise TokenInvalid(
                f"{purpose} token signature does not match — the token was altered, "
                "truncated, or signed with another secret"
            )
        try:
            claims = orjson.loads(_unb64(body, purpose))
        except orjson.JSONDecodeError as exc:  # signed by us, so only a bug gets here
            raise TokenInvalid(f"{purpose} token payload is not JSON: {exc}") from exc
        if not isinstance(claims, dict) or claims.get("p") != _CODES[purpose]:
            raise TokenInvalid(f"{purpose} token payload does not say it is a {purpose} token")
        expires = claims.pop("x", None)
        if expires is not None:
            moment = _aware(now) if now is not None else datetime.now(UTC)
            if moment.timestamp() >= expires:
                when = datetime.fromtimestamp(expires, UTC)
                raise TokenExpired(f"{purpose} token expired at {when:%Y-%m-%d %H:%M:%S} UTC")
        del claims["p"]
        return claims

    # -- typed helpers ----------------------------------------------------------

    def click(
        self, outbox_id: int | str | None, url: str, *, expires_at: datetime | None = None
    ) -> str:
        if expires_at is None:  # every link of every message: the short way
            return self._token("click", orjson.dumps({"p": "c", "o": outbox_id, "u": url}))
        return self.sign("click", {"o": outbox_id, "u": url}, expires_at=expires_at)

    def verify_click(self, token: str, *, now: datetime | None = None) -> Click:
        claims = self.verify(token, "click", now=now)
        return Click(outbox_id=claims.get("o"), url=str(claims["u"]))

    def unsubscribe(
        self,
        customer_id: str,
        *,
        channel: str | None = None,
        purpose: str | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        claims: dict[str, Any] = {"p": "u", "c": customer_id}
        if channel is not None:
            claims["ch"] = channel
        if purpose is not None:
            claims["pu"] = purpose
        if expires_at is not None:
            claims["x"] = int(_aware(expires_at).timestamp())
        return self._token("unsubscribe", orjson.dumps(claims))

    def verify_unsubscribe(self, token: str, *, now: datetime | None = None) -> Unsubscribe:
        claims = self.verify(token, "unsubscribe", now=now)
        return Unsubscribe(str(claims["c"]), claims.get("ch"), claims.get("pu"))

    def preferences(self, customer_id: str, *, expires_at: datetime | None = None) -> str:
        if expires_at is None:
            return self._token("preferences", orjson.dumps({"p": "p", "c": customer_id}))
        return self.sign("preferences", {"c": customer_id}, expires_at=expires_at)

    def verify_preferences(self, token: str, *, now: datetime | None = None) -> Preferences:
        return Preferences(str(self.verify(token, "preferences", now=now)["c"]))

    def _mac(self, purpose: Purpose, data: bytes) -> bytes:
        return self._macs[purpose](data)[:_MAC_BYTES]


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, with the keyed pad states hashed once.

    ``hmac.digest`` hashes both pads again on every call; copying the two
    prepared states instead makes a signature about twice as fast, and every
    message signs several links.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self.inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self.outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def __call__(self, data: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(data)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def token(self, payload: bytes) -> str:
        """``PAYLOAD.MAC`` for ``payload`` (compact JSON), both in url-safe base64."""
        # Every link of every message comes through here: HMAC inlined, no helpers.
        body = _b2a(payload, newline=False).translate(_URLSAFE).rstrip(b"=")
        inner = self.inner.copy()
        inner.update(body)
        outer = self.outer.copy()
        outer.update(inner.digest())
        # 16 bytes are 24 base64 characters, the last two of them padding.
        signature = _b2a(outer.digest()[:_MAC_BYTES], newline=False)[:_MAC_CHARS]
        return (body + b"." + signature.translate(_URLSAFE)).decode("ascii")


class Links:
    """Full URLs under the HTTP API's base URL, signed with one ``Signer``."""

    def __init__(self, signer: Signer, base_url: str) -> None:
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.click_prefix = self.base_url + PATHS["click"]
        self.unsubscribe_prefix = self.base_url + PATHS["unsubscribe"]
        self.preferences_prefix = self.base_url + PATHS["preferences"]

    def click(self, outbox_id: int | str | None, url: str) -> str:
        return self.click_prefix + self.signer.click(outbox_id, url)

    def unsubscribe(
        self, customer_id: str, *, channel: str | None = None, purpose: str | None = None
    ) -> str:
        token = self.signer.unsubscribe(customer_id, channel=channel, purpose=purpose)
        return self.unsubscribe_prefix + token

    def preferences(self, customer_id: str) -> str:
        return self.preferences_prefix + self.signer.preferences(customer_id)


class MessageLinks:
    """``links`` and ``track`` in one message's template context.

    Every URL is signed on first use and remembered, so the html part and the
    text derived from it share one signature per link. The tokens are the
    ``Signer``'s (a test compares them), made here in one step from its MAC
    states: a message signs four links or so, and each layer of calls between
    a template and the HMAC cost as much as the HMAC itself.
    """

    __slots__ = (
        "_links",
        "_customer_id",
        "_channel",
        "_outbox_id",
        "_purpose",
        "_unsubscribe",
        "_preferences",
        "_clicks",
    )

    def __init__(
        self,
        links: Links,
        customer_id: str,
        channel: str,
        outbox_id: int | str | None,
        purpose: str | None,
    ) -> None:
        self._links = links
        self._customer_id = customer_id
        self._channel = channel
        self._outbox_id = outbox_id
        self._purpose = purpose
        self._unsubscribe: str | None = None
        self._preferences: str | None = None
        self._clicks: dict[str, str] = {}

    @property
    def unsubscribe(self) -> str:
        """A signed one-click unsubscribe URL for this customer (and this channel)."""
        made = self._unsubscribe
        if made is None:
            claims: dict[str, Any] = {"p": "u", "c": self._customer_id}
            if self._channel is not None:
                claims["ch"] = self._channel
            if self._purpose is not None:
                claims["pu"] = self._purpose
            links = self._links
            mac = links.signer._macs["unsubscribe"]
            made = self._unsubscribe = links.unsubscribe_prefix + mac.token(orjson.dumps(claims))
        return made

    @property
    def preferences(self) -> str:
        """A signed URL of this customer's preference page."""
        made = self._preferences
        if made is None:
            links = self._links
            payload = orjson.dumps({"p": "p", "c": self._customer_id})
            made = links.preferences_prefix + links.signer._macs["preferences"].token(payload)
            self._preferences = made
        return made

    def track(self, url: str) -> str:
        """``{base_url}/r/{token}``: records a click on this message, then redirects to ``url``."""
        made = self._clicks.get(url)
        if made is None:
            if not isinstance(url, str) or not _ABSOLUTE.match(url):
                raise HelperError(f"track() needs an absolute http:// or https:// URL, got {url!r}")
            links = self._links
            payload = orjson.dumps({"p": "c", "o": self._outbox_id, "u": url})
            made = links.click_prefix + links.signer._macs["click"].token(payload)
            self._clicks[url] = made
        return made


_ABSOLUTE = re.compile(r"https?://[^\s/]", re.IGNORECASE)


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_b2a = binascii.b2a_base64


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unb64(text: str, purpose: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenInvalid(f"{purpose} token is not valid base64 — the link was cut short") from exc
