"""The snippet in a real browser: a demo shop on one origin, the API on another.

Headless chromium (Debian's ``/usr/bin/chromium``, driven by Playwright, which
never downloads a browser of its own) opens ``shop/index.html`` served from a
small HTTP server on 127.0.0.1; the page includes ``/v1/narrowcast.js`` from
the API served by uvicorn on another port — a different origin, so every call
the snippet makes goes through CORS exactly as on a real shop. The tests set
up ``web_messages`` rows directly in the store and assert on what the page
shows (by role and accessible name) and on the rows the clicks leave behind.
Each state is screenshotted into the test's ``tmp_path``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import insert, select

from narrowcast.api.app import create_app
from narrowcast.api.settings import ApiSecrets, ApiSettings
from narrowcast.config import Settings
from narrowcast.render.links import Links, Signer
from narrowcast.render.settings import LinksSettings
from narrowcast.store import Store
from narrowcast.store.schema import customers, events, web_messages, web_views

from .conftest import API_KEY, IDENTITY_SECRET, LINK_SECRET, Api, LiveServer, free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOP_PAGE = Path(__file__).parent / "shop" / "index.html"
GOOGLE = "https://www.google.com/search?q=hiking+boots"
NOW = datetime.now(UTC).replace(microsecond=0)


class Shop:
    """The demo shop: every path renders ``shop/index.html`` for the logged-in customer."""

    def __init__(self) -> None:
        self.api_url = ""
        self.customer_token = ""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the http.server name
                page = (
                    SHOP_PAGE.read_text("utf-8")
                    .replace("{{api}}", html.escape(shop.api_url))
                    .replace("{{customer_token}}", html.escape(shop.customer_token))
                )
                body = page.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def __enter__(self) -> Shop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Site:
    api: Api
    shop: Shop
    server: LiveServer
    shots: Path

    def screenshot(self, page: Page, name: str) -> None:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in
    # this thread until it stops, and later tests call asyncio.run().
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: "
            "apt-get install chromium (Playwright is not allowed to download its own)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def site(store: Store, tmp_path: Path) -> Iterator[Site]:
    """The shop and the API on two ports of 127.0.0.1; the API trusts the shop's origin."""
    store.upgrade()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with Shop() as shop:
        settings = Settings(
            api=ApiSettings(cors_origins=[shop.origin]),
            links=LinksSettings(base_url=base_url),
        )
        signer = Signer(LINK_SECRET)
        secrets = ApiSecrets(api_key=API_KEY, identity_secret=IDENTITY_SECRET)
        app = create_app(settings, store, secrets=secrets, signer=signer)
        shop.api_url = base_url
        with LiveServer(app, port) as server:
            yield Site(
                Api(app, store, settings, signer, Links(signer, base_url)), shop, server, tmp_path
            )


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile: no cookies, no storage, as a first-time visitor."""
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield opened
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def web_message(store: Store, outbox_id: int, title: str, **row: Any) -> int:
    values: dict[str, Any] = {
        "outbox_id": outbox_id,
        "campaign": "guide",
        "placement": "banner",
        "visitor": "any",
        "referrers": [],
        "path": "*",
        "parts": {"title": title, "body": f"About {title.lower()}"},
        "created_at": NOW - timedelta(hours=1),
        **row,
    }
    with store.begin() as conn:
        new_id: int = conn.execute(insert(web_messages).values(values)).inserted_primary_key[0]
    return new_id


def visit(page: Page, url: str, referer: str | None = None) -> dict[str, Any]:
    """Open ``url`` and wait until the snippet has shown its messages; its state."""
    page.goto(url, referer=referer)
    return settle(page)


def settle(page: Page) -> dict[str, Any]:
    """Wait for the snippet to finish loading and every report it sent to be answered."""
    page.wait_for_function(
        "() => window.narrowcast && window.narrowcast.state.status !== 'loading'", timeout=10_000
    )
    page.evaluate("() => window.narrowcast.settled()")
    state: dict[str, Any] = page.evaluate("() => window.narrowcast.state")
    assert state["status"] == "ready", state["error"]
    return state


def web_view(store: Store, message_id: int) -> dict[str, Any]:
    with store.connect() as conn:
        row = conn.execute(select(web_views).where(web_views.c.web_message_id == message_id))
        return dict(row.mappings().one())


def test_a_first_time_visitor_from_search_sees_the_new_visitor_guide(
    site: Site, page: Page
) -> None:
    guide = web_message(
        site.api.store,
        1,
        "New here? Start with our boot guide",
        visitor="new",
        referrers=["search"],
        placement="modal",
        parts={
            "title": "New here? Start with our boot guide",
            "body": "Five questions to find the right pair.",
            "cta_label": "Read the guide",
            "cta_url": "https://shop.test/guides/boots",
        },
    )
    web_message(site.api.store, 2, "Welcome back: new arrivals", visitor="returning")

    state = visit(page, site.shop.url("/boots/"), referer=GOOGLE)
    assert state["referrer"] == "search" and state["returning"] is False

    dialog = page.get_by_role("dialog", name="New here? Start with our boot guide")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog.get_by_role("link", name="Read the guide")).to_be_focused()
    expect(page.get_by_text("Welcome back: new arrivals")).to_have_count(0)
    site.screenshot(page, "1-new-visitor-guide")
    assert web_view(site.api.store, guide)["views"] == 1

    page.keyboard.press("Tab")  # focus stays inside the dialog
    expect(dialog.get_by_role("button", name="Dismiss")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("link", name="Read the guide")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    settle(page)
    assert web_view(site.api.store, guide)["dismissed_at"] is not None
    site.screenshot(page, "2-guide-dismissed")

    # Still the first session: a second page keeps the visitor "new".
    again = visit(page, site.shop.url("/tents/"), referer=GOOGLE)
    assert again["returning"] is False and again["visitor"] == state["visitor"]


def test_a_returning_visitor_sees_the_returning_message_and_not_the_guide(
    site: Site, page: Page
) -> None:
    web_message(site.api.store, 1, "New here? Start with our guide", visitor="new")
    toast_id = web_message(
        site.api.store,
        2,
        "Welcome back: new arrivals",
        visitor="returning",
        placement="toast",
        parts={"title": "Welcome back: new arrivals", "cta_label": "See them", "cta_url": "/new/"},
    )
    # A visitor id from an earlier session, in the shop's first-party cookie.
    visitor = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    page.context.add_cookies([{"name": "nc_vid", "value": visitor, "url": site.shop.url()}])

    state = visit(page, site.shop.url("/"), referer=GOOGLE)
    assert state["returning"] is True and state["visitor"] == visitor

    toast = page.get_by_role("status").filter(has_text="Welcome back: new arrivals")
    expect(toast).to_be_visible()
    expect(page.get_by_text("New here? Start with our guide")).to_have_count(0)
    site.screenshot(page, "returning-visitor")

    # The call to action is a plain link to the shop's page; the click is reported on the way.
    toast.get_by_role("link", name="See them").click()
    page.wait_for_url(site.shop.url("/new/"))
    settle(page)
    # The report outlives the page it left (fetch keepalive), so it is awaited in the store.
    deadline = time.monotonic() + 5
    while web_view(site.api.store, toast_id)["clicked_at"] is None:
        assert time.monotonic() < deadline, "the click on the call to action was not reported"
        time.sleep(0.05)
    page.reload()
    settle(page)
    expect(page.get_by_text("Welcome back: new arrivals")).to_have_count(0)


def test_a_dismissed_banner_is_recorded_and_does_not_come_back(site: Site, page: Page) -> None:
    banner = web_message(site.api.store, 1, "Free shipping this weekend")

    state = visit(page, site.shop.url("/"))
    assert state["referrer"] == "direct"
    region = page.get_by_role("region", name="Free shipping this weekend")
    expect(region).to_be_visible()
    site.screenshot(page, "1-banner")

    region.get_by_role("button", name="Dismiss").click()
    expect(region).to_have_count(0)
    settle(page)
    row = web_view(site.api.store, banner)
    assert row["visitor"] == f"v:{state['visitor']}"
    assert row["dismissed_at"] is not None and row["views"] == 1

    page.reload()
    settle(page)
    expect(page.get_by_text("Free shipping this weekend")).to_have_count(0)
    site.screenshot(page, "2-after-reload")


def test_an_nps_answer_of_a_known_customer_becomes_an_nps_response_event(
    site: Site, page: Page
) -> None:
    with site.api.store.begin() as conn:
        conn.execute(
            insert(customers).values(id="c1", created_at=NOW, updated_at=NOW, attributes={})
        )
    survey = web_message(
        site.api.store,
        1,
        "How likely are you to recommend us?",
        campaign="nps-q3",
        placement="toast",
        survey="nps",
        customer_id="c1",
    )
    site.shop.customer_token = site.api.customer_token("c1")

    visit(page, site.shop.url("/"))
    toast = page.get_by_role("status").filter(has_text="How likely are you to recommend us?")
    expect(toast).to_be_visible()
    site.screenshot(page, "1-survey")

    toast.get_by_role("button", name="Score 9 of 10").click()
    expect(toast.get_by_text("Thank you!")).to_be_visible()
    settle(page)
    site.screenshot(page, "2-answered")

    with site.api.store.connect() as conn:
        answers = conn.execute(select(events).where(events.c.type == "nps_response")).all()
    assert len(answers) == 1
    answer = answers[0]._mapping
    assert answer["customer_id"] == "c1"
    assert answer["properties"]["score"] == 9 and answer["properties"]["campaign"] == "nps-q3"
    assert web_view(site.api.store, survey)["visitor"] == "c:c1"


def test_html_in_a_message_is_shown_as_text(site: Site, page: Page) -> None:
    title = '<img src=x onerror="window.pwned=1">Sale <b>now</b>'
    body = "<script>window.pwned=2</script>Up to 50% off"
    web_message(
        site.api.store,
        1,
        title,
        placement="modal",
        parts={"title": title, "body": body, "cta_label": "Go", "cta_url": "javascript:pwned=3"},
    )

    visit(page, site.shop.url("/"))
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".nc-title")).to_have_text(title)
    expect(dialog.locator(".nc-body")).to_have_text(body)
    assert dialog.locator("img, b, script").count() == 0
    expect(dialog.get_by_role("link")).to_have_count(0)  # no http(s) link, no link at all
    assert page.evaluate("() => window.pwned") is None
    site.screenshot(page, "html-as-text")


def test_referrer_classification(site: Site, page: Page) -> None:
    visit(page, site.shop.url("/"))
    page_url = site.shop.url("/boots/")
    cases = {
        "": "direct",
        "https://www.google.com/search?q=x": "search",
        "https://www.google.co.uk/": "search",
        "https://duckduckgo.com/": "search",
        "https://www.bing.com/search?q=x": "search",
        "https://search.yahoo.com/": "search",
        "https://t.co/abc": "social",
        "https://x.com/shop": "social",
        "https://l.facebook.com/l.php": "social",
        "https://www.instagram.com/": "social",
        "https://www.linkedin.com/feed/": "social",
        "https://old.reddit.com/r/hiking": "social",
        "https://mail.google.com/mail/u/0/": "email",
        "https://outlook.live.com/mail/": "email",
        "https://blog.example.org/post": "direct",
        site.shop.url("/other"): "direct",
        "not a url": "direct",
    }
    got = {
        ref: page.evaluate("([r, u]) => window.narrowcast.classify(r, u)", [ref, page_url])
        for ref in cases
    }
    assert got == cases
    utm = page.evaluate(
        "([r, u]) => window.narrowcast.classify(r, u)",
        ["https://www.google.com/", page_url + "?utm_source=nl&utm_medium=email"],
    )
    assert utm == "email"
