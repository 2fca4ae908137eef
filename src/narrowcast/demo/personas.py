"""The kinds of customer the demo shop has, each a segment narrowcast must find.

Each persona is a recipe for behaviour, taken from the ready-made
micro-segments practitioners start from (DOMAIN.md): how often and how much
they buy, whether they use coupons, what they browse and for how long, where
their visits come from, and — so that send-time and channel learning have a
real signal to find — the local hours they are active in and the channel
that reaches them (the source of their sessions and the channel their orders
are attributed to).

A persona's defining trait is a guarantee, not a tendency (the tests check
it for every member): a lost customer has no order in the last 180 days, a
cart abandoner has a cart in the last 7 days and no order after it, every
order of a coupon hunter has a coupon, every B2B order is 2,000–10,000.
Everything else is drawn from distributions and overlaps like real people do.
"""

from __future__ import annotations

from dataclasses import dataclass

from narrowcast.demo.chance import Weighted

SOURCES = ("search", "social", "email", "push", "direct")
DEVICES = ("desktop", "mobile", "tablet")
NPS_CLASSES = ("promoter", "passive", "detractor")

_ANY_LIFESTYLE = {"adventurer": 1.0, "fashionista": 1.0, "world_traveller": 1.0, "tech_lover": 1.0}
_SHOP_PAGES = ("home", "category", "category", "search", "help", "account")


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    weight: float
    """Share of the shop's customers."""
    about: str
    # who they are
    customer_types: Weighted[str]
    ages: tuple[int, int]
    income: Weighted[str]
    lifestyles: Weighted[str]
    categories: tuple[str, ...]
    """Categories they favour besides those of their lifestyle."""
    # how much they buy
    orders: tuple[int, int]
    """How many orders (each in its own visit), inclusive range."""
    browses: tuple[int, int]
    """How many visits without an order."""
    window: tuple[int, int]
    """Days before now in which their visits fall."""
    order_value: tuple[float, float]
    """Every order's value lies in this range (a customer has a typical value within it)."""
    items: tuple[int, int]
    coupon_rate: float
    return_rate: float
    # how they visit
    sources: Weighted[str]
    devices: Weighted[str]
    app_rate: float
    """Share who have the shop's app installed (push needs it)."""
    channel: str
    """The messaging channel that works for them (email, push, in_app or web)."""
    hours: tuple[int, ...]
    """Local hours their visits start in (a few stray visits aside)."""
    views: tuple[int, int]
    """Page and product views per browsing visit."""
    product_share: float
    """Share of those views that are product pages."""
    pages: tuple[str, ...]
    dwell: tuple[int, int]
    """Seconds spent on a product page."""
    rec_click_rate: float
    """Chance a visit includes a click on a recommended product."""
    cart_rate: float
    """Chance a browsing visit leaves something in the cart."""
    # what they say and allow
    nps_rate: float
    nps: Weighted[str]
    email_consent: float
    push_consent: float
    # shapes a few personas need
    weekdays_only: bool = False
    seasonal: bool = False
    """Orders fall in the Christmas season (5 Nov – 22 Dec) of the last two years."""
    abandons_cart: bool = False
    """Their latest visit, 1–6 days ago, left a cart and was not followed by an order."""


def _w(**weights: float) -> Weighted[str]:
    return Weighted(weights)


def _sources(
    search: float, social: float, email: float, push: float, direct: float
) -> Weighted[str]:
    return _w(search=search, social=social, email=email, push=push, direct=direct)


def _devices(desktop: float, mobile: float, tablet: float) -> Weighted[str]:
    return _w(desktop=desktop, mobile=mobile, tablet=tablet)


def _nps(promoter: float, passive: float, detractor: float) -> Weighted[str]:
    return _w(promoter=promoter, passive=passive, detractor=detractor)


_INDIVIDUAL = _w(individual=1.0)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="vip",
        weight=0.02,
        about="buys often and spends a lot; app user, answers push in the evening",
        customer_types=_INDIVIDUAL,
        ages=(30, 62),
        income=_w(high=0.8, middle=0.2),
        lifestyles=_w(fashionista=2.0, world_traveller=1.5, tech_lover=1.0, adventurer=0.5),
        categories=("fashion", "electronics"),
        orders=(8, 11),
        browses=(0, 2),
        window=(1, 540),
        order_value=(700.0, 1500.0),
        items=(1, 4),
        coupon_rate=0.08,
        return_rate=0.06,
        sources=_sources(0.05, 0.05, 0.1, 0.65, 0.15),
        devices=_devices(0.2, 0.7, 0.1),
        app_rate=0.9,
        channel="push",
        hours=(20, 21, 22),
        views=(1, 3),
        product_share=0.7,
        pages=_SHOP_PAGES,
        dwell=(20, 90),
        rec_click_rate=0.1,
        cart_rate=0.1,
        nps_rate=0.6,
        nps=_nps(0.75, 0.2, 0.05),
        email_consent=0.9,
        push_consent=0.9,
    ),
    Persona(
        name="big_spender",
        weight=0.04,
        about="few but large orders, well above the shop's average; reads email at night",
        customer_types=_INDIVIDUAL,
        ages=(35, 68),
        income=_w(high=0.7, middle=0.3),
        lifestyles=_w(world_traveller=2.0, tech_lover=1.5, fashionista=1.0, adventurer=1.0),
        categories=("electronics", "travel"),
        orders=(2, 3),
        browses=(0, 2),
        window=(1, 540),
        order_value=(800.0, 1900.0),
        items=(1, 3),
        coupon_rate=0.05,
        return_rate=0.05,
        sources=_sources(0.15, 0.05, 0.6, 0.0, 0.2),
        devices=_devices(0.6, 0.15, 0.25),
        app_rate=0.3,
        channel="email",
        hours=(21, 22, 23),
        views=(2, 4),
        product_share=0.7,
        pages=_SHOP_PAGES,
        dwell=(40, 150),
        rec_click_rate=0.05,
        cart_rate=0.1,
        nps_rate=0.4,
        nps=_nps(0.55, 0.3, 0.15),
        email_consent=0.85,
        push_consent=0.5,
    ),
    Persona(
        name="frequent_buyer",
        weight=0.045,
        about="at least five orders in six months; lives in the app at lunch and after dinner",
        customer_types=_INDIVIDUAL,
        ages=(22, 50),
        income=_w(middle=0.7, high=0.2, low=0.1),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=("home", "beauty"),
        orders=(5, 6),
        browses=(0, 1),
        window=(1, 175),
        order_value=(30.0, 110.0),
        items=(1, 4),
        coupon_rate=0.15,
        return_rate=0.04,
        sources=_sources(0.05, 0.05, 0.1, 0.1, 0.7),
        devices=_devices(0.1, 0.85, 0.05),
        app_rate=0.9,
        channel="in_app",
        hours=(12, 13, 20, 21),
        views=(1, 3),
        product_share=0.7,
        pages=_SHOP_PAGES,
        dwell=(15, 60),
        rec_click_rate=0.15,
        cart_rate=0.15,
        nps_rate=0.5,
        nps=_nps(0.6, 0.3, 0.1),
        email_consent=0.85,
        push_consent=0.7,
    ),
    Persona(
        name="seasonal_buyer",
        weight=0.06,
        about="buys Christmas presents in November and December, little else",
        customer_types=_INDIVIDUAL,
        ages=(28, 65),
        income=_w(middle=0.6, high=0.25, low=0.15),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=("home", "electronics", "beauty"),
        orders=(2, 3),
        browses=(0, 1),
        window=(1, 730),
        order_value=(40.0, 220.0),
        items=(1, 5),
        coupon_rate=0.3,
        return_rate=0.1,
        sources=_sources(0.2, 0.1, 0.55, 0.0, 0.15),
        devices=_devices(0.5, 0.4, 0.1),
        app_rate=0.15,
        channel="email",
        hours=(18, 19, 20, 21),
        views=(1, 3),
        product_share=0.7,
        pages=_SHOP_PAGES,
        dwell=(20, 80),
        rec_click_rate=0.1,
        cart_rate=0.1,
        nps_rate=0.3,
        nps=_nps(0.4, 0.4, 0.2),
        email_consent=0.8,
        push_consent=0.5,
        seasonal=True,
    ),
    Persona(
        name="coupon_hunter",
        weight=0.06,
        about="never buys without a coupon; opens newsletters on the commute and late at night",
        customer_types=_INDIVIDUAL,
        ages=(19, 45),
        income=_w(low=0.5, middle=0.45, high=0.05),
        lifestyles=_w(fashionista=2.0, tech_lover=1.0, adventurer=1.0, world_traveller=0.5),
        categories=("fashion", "beauty"),
        orders=(2, 4),
        browses=(0, 1),
        window=(1, 365),
        order_value=(20.0, 70.0),
        items=(1, 3),
        coupon_rate=1.0,
        return_rate=0.08,
        sources=_sources(0.1, 0.1, 0.65, 0.0, 0.15),
        devices=_devices(0.2, 0.75, 0.05),
        app_rate=0.4,
        channel="email",
        hours=(7, 8, 22, 23),
        views=(1, 4),
        product_share=0.6,
        pages=_SHOP_PAGES,
        dwell=(10, 50),
        rec_click_rate=0.1,
        cart_rate=0.25,
        nps_rate=0.3,
        nps=_nps(0.3, 0.45, 0.25),
        email_consent=0.97,
        push_consent=0.6,
    ),
    Persona(
        name="one_time_buyer",
        weight=0.12,
        about="one visit, one purchase, never came back",
        customer_types=_INDIVIDUAL,
        ages=(18, 70),
        income=_w(low=0.3, middle=0.5, high=0.2),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=(),
        orders=(1, 1),
        browses=(0, 0),
        window=(14, 600),
        order_value=(25.0, 150.0),
        items=(1, 2),
        coupon_rate=0.3,
        return_rate=0.05,
        sources=_sources(0.35, 0.25, 0.1, 0.0, 0.3),
        devices=_devices(0.4, 0.5, 0.1),
        app_rate=0.05,
        channel="web",
        hours=(10, 11, 17, 18, 19),
        views=(1, 2),
        product_share=0.8,
        pages=_SHOP_PAGES,
        dwell=(15, 60),
        rec_click_rate=0.0,
        cart_rate=0.0,
        nps_rate=0.25,
        nps=_nps(0.2, 0.3, 0.5),
        email_consent=0.7,
        push_consent=0.3,
    ),
    Persona(
        name="lost_customer",
        weight=0.11,
        about="used to buy; nothing for more than six months",
        customer_types=_INDIVIDUAL,
        ages=(20, 70),
        income=_w(low=0.3, middle=0.55, high=0.15),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=("home",),
        orders=(1, 2),
        browses=(0, 1),
        window=(190, 730),
        order_value=(30.0, 160.0),
        items=(1, 3),
        coupon_rate=0.2,
        return_rate=0.12,
        sources=_sources(0.2, 0.1, 0.5, 0.05, 0.15),
        devices=_devices(0.5, 0.4, 0.1),
        app_rate=0.25,
        channel="email",
        hours=(19, 20, 21, 22),
        views=(1, 3),
        product_share=0.6,
        pages=_SHOP_PAGES,
        dwell=(15, 60),
        rec_click_rate=0.05,
        cart_rate=0.1,
        nps_rate=0.35,
        nps=_nps(0.1, 0.25, 0.65),
        email_consent=0.65,
        push_consent=0.4,
    ),
    Persona(
        name="cart_abandoner",
        weight=0.07,
        about="filled a cart in the last week and left; answers push late at night",
        customer_types=_INDIVIDUAL,
        ages=(18, 45),
        income=_w(low=0.4, middle=0.5, high=0.1),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=("fashion", "electronics"),
        orders=(0, 2),
        browses=(0, 1),
        window=(8, 365),
        order_value=(30.0, 200.0),
        items=(1, 3),
        coupon_rate=0.2,
        return_rate=0.05,
        sources=_sources(0.1, 0.15, 0.1, 0.5, 0.15),
        devices=_devices(0.15, 0.8, 0.05),
        app_rate=0.7,
        channel="push",
        hours=(22, 23, 0),
        views=(1, 3),
        product_share=0.8,
        pages=_SHOP_PAGES,
        dwell=(20, 90),
        rec_click_rate=0.1,
        cart_rate=0.3,
        nps_rate=0.2,
        nps=_nps(0.3, 0.4, 0.3),
        email_consent=0.75,
        push_consent=0.75,
        abandons_cart=True,
    ),
    Persona(
        name="recommendation_clicker",
        weight=0.05,
        about="clicks recommended products in the app every week and never buys",
        customer_types=_INDIVIDUAL,
        ages=(18, 40),
        income=_w(low=0.5, middle=0.45, high=0.05),
        lifestyles=_w(tech_lover=2.0, fashionista=1.5, adventurer=1.0, world_traveller=1.0),
        categories=("electronics",),
        orders=(0, 0),
        browses=(2, 4),
        window=(1, 120),
        order_value=(20.0, 100.0),
        items=(1, 2),
        coupon_rate=0.0,
        return_rate=0.0,
        sources=_sources(0.1, 0.2, 0.05, 0.1, 0.55),
        devices=_devices(0.1, 0.85, 0.05),
        app_rate=0.75,
        channel="in_app",
        hours=(13, 14, 15, 16),
        views=(1, 2),
        product_share=0.8,
        pages=_SHOP_PAGES,
        dwell=(10, 40),
        rec_click_rate=0.9,
        cart_rate=0.1,
        nps_rate=0.1,
        nps=_nps(0.3, 0.5, 0.2),
        email_consent=0.6,
        push_consent=0.5,
    ),
    Persona(
        name="heavy_browser",
        weight=0.04,
        about="many visits and pages, minutes on every product page, rarely buys",
        customer_types=_INDIVIDUAL,
        ages=(20, 55),
        income=_w(low=0.3, middle=0.5, high=0.2),
        lifestyles=_w(tech_lover=2.0, adventurer=1.5, world_traveller=1.0, fashionista=1.0),
        categories=("electronics", "outdoor"),
        orders=(0, 1),
        browses=(4, 5),
        window=(1, 90),
        order_value=(40.0, 300.0),
        items=(1, 2),
        coupon_rate=0.1,
        return_rate=0.05,
        sources=_sources(0.35, 0.05, 0.05, 0.0, 0.55),
        devices=_devices(0.65, 0.1, 0.25),
        app_rate=0.2,
        channel="web",
        hours=(22, 23, 0, 1),
        views=(3, 5),
        product_share=0.75,
        pages=("category", "category", "search", "guide", "blog", "home"),
        dwell=(150, 600),
        rec_click_rate=0.2,
        cart_rate=0.15,
        nps_rate=0.2,
        nps=_nps(0.35, 0.45, 0.2),
        email_consent=0.6,
        push_consent=0.3,
    ),
    Persona(
        name="b2b_account",
        weight=0.02,
        about="corporate or government buyer; large tickets, office hours, email",
        customer_types=_w(corporate=0.75, government=0.25),
        ages=(28, 62),
        income=_w(high=0.6, middle=0.4),
        lifestyles=_w(tech_lover=1.0, world_traveller=1.0, adventurer=0.5, fashionista=0.3),
        categories=("office", "electronics"),
        orders=(2, 4),
        browses=(1, 2),
        window=(1, 540),
        order_value=(2000.0, 10000.0),
        items=(5, 60),
        coupon_rate=0.0,
        return_rate=0.03,
        sources=_sources(0.25, 0.05, 0.55, 0.0, 0.15),
        devices=_devices(0.9, 0.05, 0.05),
        app_rate=0.0,
        channel="email",
        hours=(9, 10, 11, 12, 15, 16),
        views=(2, 4),
        product_share=0.4,
        pages=("pricing", "pricing", "demo", "contact", "guide", "about"),
        dwell=(60, 240),
        rec_click_rate=0.0,
        cart_rate=0.1,
        nps_rate=0.5,
        nps=_nps(0.4, 0.4, 0.2),
        email_consent=0.9,
        push_consent=0.0,
        weekdays_only=True,
    ),
    Persona(
        name="search_visitor",
        weight=0.08,
        about="arrives from search engines with specific queries, reads guides and pricing",
        customer_types=_INDIVIDUAL,
        ages=(25, 60),
        income=_w(low=0.2, middle=0.6, high=0.2),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=(),
        orders=(0, 1),
        browses=(1, 3),
        window=(1, 120),
        order_value=(30.0, 200.0),
        items=(1, 2),
        coupon_rate=0.1,
        return_rate=0.05,
        sources=_sources(0.8, 0.03, 0.02, 0.0, 0.15),
        devices=_devices(0.6, 0.3, 0.1),
        app_rate=0.05,
        channel="web",
        hours=(9, 10, 11),
        views=(1, 3),
        product_share=0.4,
        pages=("guide", "guide", "pricing", "blog", "category", "search"),
        dwell=(30, 120),
        rec_click_rate=0.05,
        cart_rate=0.1,
        nps_rate=0.1,
        nps=_nps(0.35, 0.4, 0.25),
        email_consent=0.6,
        push_consent=0.3,
    ),
    Persona(
        name="social_visitor",
        weight=0.09,
        about="comes from Instagram and TikTok on the phone in the evening, short visits",
        customer_types=_INDIVIDUAL,
        ages=(16, 34),
        income=_w(low=0.6, middle=0.35, high=0.05),
        lifestyles=_w(fashionista=2.0, adventurer=1.5, world_traveller=1.0, tech_lover=0.5),
        categories=("fashion", "beauty"),
        orders=(0, 1),
        browses=(1, 2),
        window=(1, 90),
        order_value=(15.0, 80.0),
        items=(1, 2),
        coupon_rate=0.2,
        return_rate=0.1,
        sources=_sources(0.03, 0.8, 0.02, 0.0, 0.15),
        devices=_devices(0.05, 0.92, 0.03),
        app_rate=0.1,
        channel="web",
        hours=(18, 19, 20, 21, 22, 23),
        views=(1, 2),
        product_share=0.6,
        pages=("home", "blog", "careers", "category", "about"),
        dwell=(5, 25),
        rec_click_rate=0.05,
        cart_rate=0.1,
        nps_rate=0.05,
        nps=_nps(0.3, 0.4, 0.3),
        email_consent=0.5,
        push_consent=0.3,
    ),
    Persona(
        name="occasional_buyer",
        weight=0.095,
        about="the ordinary customer: a few orders a year, newsletter reader",
        customer_types=_INDIVIDUAL,
        ages=(22, 68),
        income=_w(low=0.25, middle=0.6, high=0.15),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=("home",),
        orders=(1, 2),
        browses=(0, 1),
        window=(1, 540),
        order_value=(30.0, 150.0),
        items=(1, 3),
        coupon_rate=0.25,
        return_rate=0.07,
        sources=_sources(0.2, 0.1, 0.5, 0.0, 0.2),
        devices=_devices(0.45, 0.45, 0.1),
        app_rate=0.2,
        channel="email",
        hours=(18, 19, 20, 21),
        views=(1, 3),
        product_share=0.6,
        pages=_SHOP_PAGES,
        dwell=(15, 70),
        rec_click_rate=0.08,
        cart_rate=0.1,
        nps_rate=0.3,
        nps=_nps(0.4, 0.4, 0.2),
        email_consent=0.8,
        push_consent=0.5,
    ),
    Persona(
        name="newcomer",
        weight=0.10,
        about="signed up this month, has not bought yet, reading guides",
        customer_types=_INDIVIDUAL,
        ages=(18, 60),
        income=_w(low=0.3, middle=0.55, high=0.15),
        lifestyles=Weighted(_ANY_LIFESTYLE),
        categories=(),
        orders=(0, 0),
        browses=(1, 2),
        window=(1, 30),
        order_value=(20.0, 100.0),
        items=(1, 2),
        coupon_rate=0.0,
        return_rate=0.0,
        sources=_sources(0.35, 0.3, 0.05, 0.0, 0.3),
        devices=_devices(0.4, 0.5, 0.1),
        app_rate=0.15,
        channel="web",
        hours=(10, 11, 12, 17, 18, 19, 20),
        views=(1, 3),
        product_share=0.5,
        pages=("home", "guide", "guide", "about", "help", "category"),
        dwell=(15, 60),
        rec_click_rate=0.05,
        cart_rate=0.15,
        nps_rate=0.0,
        nps=_nps(0.3, 0.4, 0.3),
        email_consent=0.75,
        push_consent=0.4,
    ),
)

PERSONA_WEIGHTS: Weighted[Persona] = Weighted({p: p.weight for p in PERSONAS})
BY_NAME: dict[str, Persona] = {p.name: p for p in PERSONAS}
