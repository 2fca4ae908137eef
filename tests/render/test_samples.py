"""The shipped templates: cart_abandoner in English and Spanish, email and push."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrowcast.render import Links, Renderer, Templates

from .conftest import BASE_URL, customer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CART = {
    "name": "cart_abandoner",
    "cart": {
        "product": "maravilla-leather-boots",
        "name": "leather boots",
        "brand": "Maravilla",
        "value": 1234.5,
        "currency": "EUR",
    },
}
CAMPAIGN = {"name": "cart_abandoner", "description": "Reminds a customer of their cart."}


@pytest.fixture
def shipped(signer: Any) -> Renderer:
    return Renderer(Templates(TEMPLATES), Links(signer, BASE_URL))


def test_the_shipped_templates_compile() -> None:
    assert Templates(TEMPLATES).check_syntax() == []


@pytest.mark.parametrize(
    ("locale", "subject", "price", "words"),
    [
        (
            "en-GB",
            "Ana, still thinking about the leather boots?",
            "€1,234.50",
            "Finish your order (",
        ),
        (
            "es-ES",
            "Ana, ¿sigues pensando en leather boots?",
            "1.234,50\u00a0€",
            "Terminar la compra (",
        ),
        ("es-MX", "Ana, ¿sigues pensando en leather boots?", "EUR1,234.50", "Darte de baja ("),
        (
            "pl-PL",
            "Ana, still thinking about the leather boots?",
            "1\u00a0234,50\u00a0€",
            "Unsubscribe (",
        ),
    ],
)
def test_cart_abandoner_email(
    shipped: Renderer, locale: str, subject: str, price: str, words: str
) -> None:
    message = shipped.render(
        "email", customer(locale=locale), campaign=CAMPAIGN, segment=CART, outbox_id=11
    )
    assert message["subject"] == subject
    assert price in message["preheader"] and price in message["html"] and price in message["text"]
    assert words in message["text"] and "<" not in message["text"]
    signer = shipped.links.signer
    clicks = [
        signer.verify_click(part.split('"')[0])
        for part in message["html"].split(f"{BASE_URL}/r/")[1:]
    ]
    assert [(c.outbox_id, c.url) for c in clicks] == [
        (11, "https://shop.example.com/p/maravilla-leather-boots"),
        (11, "https://shop.example.com/cart"),
    ]
    assert f"{BASE_URL}/u/" in message["html"]


def test_cart_abandoner_push(shipped: Renderer) -> None:
    message = shipped.render(
        "push", customer(locale="es-ES", first_name=None), campaign=CAMPAIGN, segment=CART
    )
    assert message["title"] == "¿Te lo sigues pensando?"
    assert message["body"] == "Hola, tu leather boots sigue en la cesta: 1.234,50\u00a0€."
    assert message["link"].startswith(f"{BASE_URL}/r/")
    assert message["image"] is None and message["data"] is None
