"""Customer tokens: how an app or a page proves which customer is calling.

The shop's own backend, which knows who is logged in, signs a short token with
the identity secret it shares with narrowcast (``[api] identity_secret_env``) —
the same idea as Intercom's identity verification, with an expiry::

    token = "v1." + b64url(customer_id) + "." + str(expires_unix) + "." + b64url(mac)
    mac   = HMAC-SHA256(secret, "v1." + b64url(customer_id) + "." + str(expires_unix))

(``b64url`` is URL-safe base64 without padding.) The app sends it as
``Authorization: Bearer <token>``. Anything else — no token, a forged or
truncated one, one past its expiry — is refused, so nobody can read or mark
another customer's messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

VERSION = "v1"


class IdentityError(Exception):
    """The customer token is missing, malformed, forged or expired (the message says which)."""


def sign_customer(secret: bytes, customer_id: str, expires_at: datetime) -> str:
    """A token for ``customer_id`` valid until ``expires_at`` (what the shop's backend does)."""
    body = f"{VERSION}.{_b64(customer_id.encode())}.{int(expires_at.timestamp())}"
    return f"{body}.{_b64(_mac(secret, body))}"


def sign_for(secret: bytes, customer_id: str, valid_for: timedelta = timedelta(hours=1)) -> str:
    return sign_customer(secret, customer_id, datetime.now(UTC) + valid_for)


def verify_customer(secret: bytes, token: str, now: datetime | None = None) -> str:
    """The customer id inside a genuine, unexpired token; ``IdentityError`` otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise IdentityError(
            "customer token is malformed: expected v1.<customer>.<expires>.<signature>"
        )
    _, encoded_id, expires_text, mac_text = parts
    body = f"{VERSION}.{encoded_id}.{expires_text}"
    try:
        mac = _unb64(mac_text)
        customer_id = _unb64(encoded_id).decode("utf-8")
        expires = int(expires_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdentityError("customer token is malformed (bad base64 or expiry)") from exc
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise IdentityError("customer token signature does not match — forged or altered")
    moment = (now or datetime.now(UTC)).timestamp()
    if moment >= expires:
        raise IdentityError("customer token has expired — ask the shop's backend for a new one")
    if not customer_id:
        raise IdentityError("customer token names no customer")
    return customer_id


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.digest(secret, body.encode("ascii"), hashlib.sha256)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError("not url-safe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
