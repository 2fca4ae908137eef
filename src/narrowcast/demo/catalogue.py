"""What the demo shop sells and shows: categories, brands, products, pages, coupons.

Categories line up with the lifestyle attribute (an adventurer browses
outdoor gear, a tech lover electronics), so "many products of one category
or brand" and lifestyle segments find the same people from two directions.
Prices are in the shop's reporting currency (EUR) in every market, so value
thresholds in segment rules compare like with like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from narrowcast.demo.chance import Weighted

CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str


_RANGE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        ("Voltix", "Nordtek", "Auralis"),
        ("wireless earbuds", "smartwatch", "e-reader", "bluetooth speaker", "action camera"),
    ),
    "fashion": (
        ("Maravilla", "Atelier Wisła", "Kestrel & Co"),
        ("linen shirt", "leather boots", "wool coat", "silk scarf", "denim jacket"),
    ),
    "beauty": (
        ("Lumière", "Bosque", "Mira"),
        ("face serum", "eau de parfum", "lip balm", "night cream"),
    ),
    "outdoor": (
        ("Cumbre", "Tatra Gear", "Trailhead"),
        ("trekking poles", "two-person tent", "down jacket", "hiking boots", "headlamp"),
    ),
    "travel": (
        ("Globetrot", "Valija", "Nomada"),
        ("cabin suitcase", "travel adapter", "packing cubes", "travel pillow"),
    ),
    "home": (
        ("Casa Clara", "Hygge Living", "Dom"),
        ("ceramic vase", "linen bedding", "coffee grinder", "scented candle"),
    ),
    "office": (
        ("Deskline", "Ergonova", "OfficePro"),
        ("ergonomic chair", "standing desk", "27-inch monitor", "docking station"),
    ),
}


def _sku(brand: str, name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{brand} {name}".lower().replace("ł", "l")).strip("-")


CATEGORIES: tuple[str, ...] = tuple(_RANGE)
PRODUCTS: dict[str, tuple[Product, ...]] = {
    category: tuple(
        Product(_sku(brand, name), name, category, brand) for brand in brands for name in names
    )
    for category, (brands, names) in _RANGE.items()
}

LIFESTYLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "adventurer": ("outdoor", "travel"),
    "fashionista": ("fashion", "beauty"),
    "world_traveller": ("travel", "fashion"),
    "tech_lover": ("electronics", "home"),
}
LIFESTYLES: tuple[str, ...] = tuple(LIFESTYLE_CATEGORIES)

PAGES: tuple[str, ...] = (
    "home", "category", "search", "pricing", "demo", "careers", "guide", "blog", "about",
    "contact", "help", "account",
)  # fmt: skip
"""Lead scoring gives pricing and demo pages many points, careers and about few."""
PAGES_WITH_CATEGORY = frozenset({"category", "guide", "blog"})

COUPONS: tuple[str, ...] = ("WELCOME10", "SPRING15", "SUMMER20", "FREESHIP", "APP10", "VIP25")
SEASON_COUPONS: tuple[str, ...] = ("BLACKFRIDAY30", "CYBER25", "XMAS15")

REFERRERS: dict[str, Weighted[str]] = {
    "search": Weighted({"google.com": 0.85, "bing.com": 0.1, "duckduckgo.com": 0.05}),
    "social": Weighted(
        {"instagram.com": 0.4, "facebook.com": 0.25, "tiktok.com": 0.25, "pinterest.com": 0.1}
    ),
}
BUSINESS_REFERRERS: dict[str, Weighted[str]] = {
    "search": REFERRERS["search"],
    "social": Weighted({"linkedin.com": 1.0}),
}
