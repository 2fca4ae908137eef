"""Customer tokens: the README recipe makes tokens the API accepts; altered ones are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from narrowcast.api.identity import IdentityError, sign_customer, verify_customer

SECRET = b"identity-secret-0123456789abcdef"
README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_recipe() -> object:
    text = README.read_text()
    match = re.search(r"```python\n(import base64, hashlib, hmac, time\n.*?)```", text, re.S)
    assert match, "the README shows how a shop's backend signs a customer token"
    namespace: dict[str, object] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    return namespace["narrowcast_token"]


def test_the_readme_recipe_signs_tokens_the_api_accepts() -> None:
    recipe = _readme_recipe()
    token = recipe(SECRET, "cliente-ñ/42", 60)  # type: ignore[operator]
    assert verify_customer(SECRET, token) == "cliente-ñ/42"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t[:-3], "signature"),
        (lambda t: t.replace("v1.", "v2.", 1), "malformed"),
        (lambda t: ".".join(t.split(".")[:3]), "malformed"),
        (lambda t: "", "malformed"),
        (lambda t: t + "x", "signature"),
    ],
)
def test_altered_tokens_are_refused(mangle: object, reason: str) -> None:
    token = sign_customer(SECRET, "c-1", datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(IdentityError, match=reason):
        verify_customer(SECRET, mangle(token))  # type: ignore[operator]


def test_expired_tokens_and_other_secrets_are_refused() -> None:
    expired = sign_customer(SECRET, "c-1", datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(IdentityError, match="expired"):
        verify_customer(SECRET, expired)
    token = sign_customer(
        b"another-secret-0123456789abcdefgh", "c-1", datetime.now(UTC) + timedelta(hours=1)
    )
    with pytest.raises(IdentityError, match="signature"):
        verify_customer(SECRET, token)


def test_one_customers_token_cannot_be_turned_into_anothers() -> None:
    token = sign_customer(SECRET, "c-1", datetime.now(UTC) + timedelta(hours=1))
    version, _, expires, mac = token.split(".")
    other = sign_customer(SECRET, "c-2", datetime.now(UTC) + timedelta(hours=1)).split(".")[1]
    with pytest.raises(IdentityError, match="signature"):
        verify_customer(SECRET, ".".join([version, other, expires, mac]))
