"""``/dashboard`` through the real app: sign-in, the pages, and headless chromium.

The shop is the report tests' week-old demo shop (``tests/reporting/shop.py``)
on SQLite; the app is ``create_app`` over it with a known operator key and an
injected clock, so sessions can expire without waiting. The access tests run
without a key, with a wrong one, with an expired and a tampered cookie; the
page tests compare what is shown with the store. The browser tests sign in
through the form in Debian's chromium (Playwright, ``executable_path``),
screenshot each page into the test's ``tmp_path`` and check the pictures are
not blank and the key text is visible — the email preview inside its iframe too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageStat
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import func, insert, select

from narrowcast.api.app import create_app
from narrowcast.api.dashboard import COOKIE, SESSION_HOURS, session_cookie
from narrowcast.api.settings import ApiSecrets
from narrowcast.config import load_settings
from narrowcast.render.links import Signer
from narrowcast.store import Store
from narrowcast.store.schema import campaign_runs, channel_pauses, outbox
from tests.reporting.shop import Shop, build_shop, write_config

from .conftest import API_KEY, LINK_SECRET, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
BASE = "http://127.0.0.1:8000"


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Dashboard:
    app: FastAPI
    clock: Clock
    shop: Shop


def make_app(config: Path, store: Store, clock: Clock, api_key: str | None = API_KEY) -> FastAPI:
    settings = load_settings(config)
    return create_app(
        settings,
        store,
        secrets=ApiSecrets(api_key=api_key),
        signer=Signer(LINK_SECRET),
        clock=clock,
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("dashboard-shop")
    (folder / "narrowcast.db").write_bytes(sqlite_template.read_bytes())
    store = Store(f"sqlite:///{folder / 'narrowcast.db'}")
    yield build_shop(store, folder)
    store.dispose()


@pytest.fixture
def dashboard(shop: Shop) -> Dashboard:
    clock = Clock()
    return Dashboard(make_app(shop.config, shop.store, clock), clock, shop)


@pytest.fixture
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    with TestClient(dashboard.app, base_url=BASE) as test_client:
        yield test_client


def sign_in(client: TestClient, key: str = API_KEY, target: str = "/dashboard") -> object:
    return client.post(
        "/dashboard/login", data={"key": key, "next": target}, follow_redirects=False
    )


# --- access --------------------------------------------------------------------------------------


def test_without_an_operator_key_the_dashboard_is_off(shop: Shop) -> None:
    app = make_app(shop.config, shop.store, Clock(), api_key=None)
    with TestClient(app, base_url=BASE) as client:
        for response in (
            client.get("/dashboard"),
            client.get("/dashboard/login"),
            client.get("/dashboard/charts"),
            client.post("/dashboard/login", data={"key": "anything"}),
        ):
            assert response.status_code == 503
            assert "api_key_env" in response.text and "The dashboard is off" in response.text


def test_every_page_asks_for_the_key_first(client: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/charts", "/dashboard/campaigns/winback_lost"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "Sign in with the operator key" in response.text
        assert f'name="next" value="{path}"' in response.text
        assert "Campaigns" not in response.text and "<svg" not in response.text
    assert client.get("/dashboard/login").status_code == 200


def test_a_wrong_key_is_refused_with_a_clear_page(client: TestClient) -> None:
    for key in ("wrong-key", "", API_KEY + "x"):
        response = sign_in(client, key)
        assert response.status_code == 401  # type: ignore[attr-defined]
        assert "Wrong operator key" in response.text  # type: ignore[attr-defined]
        assert COOKIE not in response.headers.get("set-cookie", "")  # type: ignore[attr-defined]
    assert client.get("/dashboard").status_code == 401


def test_the_right_key_gives_a_strict_http_only_session(client: TestClient) -> None:
    response = sign_in(client, target="/dashboard/charts")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/dashboard/charts"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(f"{COOKIE}=v1.")
    for attribute in (
        "HttpOnly",
        "SameSite=strict",
        "Path=/dashboard",
        f"Max-Age={SESSION_HOURS * 3600}",
    ):
        assert attribute in cookie, attribute
    assert API_KEY not in cookie
    assert client.get("/dashboard").status_code == 200
    assert client.get("/dashboard/login", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_dashboard(client: TestClient) -> None:
    for target in (
        "https://evil.example/",
        "//evil.example/dashboard",
        "/v1/events",
        "/dashboard\\x",
    ):
        response = sign_in(client, target=target)
        assert response.headers["location"] == "/dashboard", target  # type: ignore[attr-defined]


def test_an_expired_session_must_sign_in_again(client: TestClient, dashboard: Dashboard) -> None:
    sign_in(client)
    assert client.get("/dashboard").status_code == 200
    dashboard.clock.at += timedelta(hours=SESSION_HOURS, seconds=1)
    response = client.get("/dashboard")
    assert response.status_code == 401
    assert "session has expired" in response.text


def test_a_tampered_or_foreign_cookie_is_refused(client: TestClient, dashboard: Dashboard) -> None:
    later = dashboard.clock.at + timedelta(hours=1)
    good = session_cookie(API_KEY, later)
    version, expiry, mac = good.split(".")
    forged = [
        f"{version}.{int(expiry) + 86400 * 365}.{mac}",  # a longer session, same signature
        f"{version}.{expiry}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
        session_cookie("another key of the same length!", later),
        "v1.notanumber.abc",
        "garbage",
    ]
    for value in forged:
        client.cookies.set(COOKIE, value, domain="127.0.0.1", path="/dashboard")
        response = client.get("/dashboard")
        assert response.status_code == 401, value
        assert "cookie is not valid" in response.text
        client.cookies.clear()
    client.cookies.set(COOKIE, good, domain="127.0.0.1", path="/dashboard")
    assert client.get("/dashboard").status_code == 200


def test_a_bearer_key_opens_the_pages_for_scripts(client: TestClient) -> None:
    response = client.get("/dashboard", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200
    wrong = client.get("/dashboard", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_sign_out_ends_the_session(client: TestClient) -> None:
    sign_in(client)
    response = client.post("/dashboard/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
    assert (
        f'{COOKIE}=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )
    assert client.get("/dashboard").status_code == 401


# --- the pages -----------------------------------------------------------------------------------


def test_overview_shows_campaigns_queue_and_runs(client: TestClient, shop: Shop) -> None:
    sign_in(client)
    page = client.get("/dashboard")
    assert page.status_code == 200
    text = page.text
    for name in ("winback_lost", "coupon_offers", "cart_abandoner", "vip_early_access"):
        assert f'href="/dashboard/campaigns/{name}"' in text
    assert "on trigger" in text and "cron 0 10 * * TUE" in text
    assert "No channel is paused." in text
    with shop.store.connect() as conn:
        by_state = dict(
            conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
        )
        runs = conn.execute(select(func.count()).select_from(campaign_runs)).scalar_one()
    assert runs > 0
    totals = re.search(r"<tr><th>all</th>(.*?)</tr>", text, re.S)
    assert totals is not None
    shown = [
        int(n.replace(",", "")) for n in re.findall(r'<th class="n">([\d,]+)</th>', totals.group(1))
    ]
    queue = text[text.index("<h2>Queue</h2>") :]
    states = re.findall(r'<th class="n">([a-z]+)</th>', queue)
    assert dict(zip([s for s in states if s != "due"], shown, strict=False)) == by_state


def test_charts_page_has_the_reports_charts(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/dashboard/charts")
    assert page.status_code == 200
    for key in (
        "segment-sizes",
        "segment-flow",
        "channel-mix",
        "channel-engagement",
        "uplift-intervals",
    ):
        assert f'id="{key}"' in page.text
    assert page.text.count("<svg") >= 8
    assert 'role="img"' in page.text and "<script" not in page.text


def test_campaign_preview_renders_each_channel_for_a_sample_customer(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/dashboard/campaigns/winback_lost")
    assert page.status_code == 200
    assert "Rendered for sample customer <strong>demo-" in page.text
    assert 'aria-label="email"' in page.text and 'aria-label="push"' in page.text
    frame = re.search(
        r'<iframe class="email"[^>]*sandbox="allow-same-origin"\s+srcdoc="([^"]*)"', page.text
    )
    assert frame is not None, "the email's html in a sandboxed iframe"
    assert "&lt;html" in frame.group(1).lower() or "&lt;!doctype" in frame.group(1).lower()
    assert "<script" not in frame.group(1)
    variants = client.get("/dashboard/campaigns/coupon_offers").text
    assert "variant direct" in variants and "variant personal" in variants


def test_an_unknown_campaign_is_a_404_with_a_suggestion(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/dashboard/campaigns/winback_lots")
    assert page.status_code == 404
    assert "no campaign named" in page.text and "did you mean" in page.text
    assert "winback_lost" in page.text


def test_an_empty_store_paused_channel_and_failed_run(store: Store, tmp_path: Path) -> None:
    store.upgrade()
    config = write_config(tmp_path, store.engine.url.render_as_string(hide_password=False))
    clock = Clock()
    with store.begin() as conn:
        conn.execute(
            insert(channel_pauses).values(
                channel="email",
                reason="401 from SendGrid: bad API key",
                since=clock.at,
                paused_by="w1",
            )
        )
        conn.execute(
            insert(campaign_runs).values(
                campaign="winback_lost",
                key="k1",
                kind="scheduled",
                occurrence=clock.at - timedelta(hours=1),
                state="failed",
                created_at=clock.at - timedelta(hours=1),
                error="segment 'lost' did not compile",
            )
        )
    app = make_app(config, store, clock)
    with TestClient(app, base_url=BASE) as client:
        sign_in(client)
        overview = client.get("/dashboard").text
        assert "401 from SendGrid: bad API key" in overview
        assert "narrowcast channels resume email" in overview
        assert "failed</span>: segment &#39;lost&#39; did not compile" in overview
        assert "The outbox is empty" in overview
        charts = client.get("/dashboard/charts")
        assert charts.status_code == 200
        assert "<svg" not in charts.text and charts.text.count("No data yet") >= 6
        preview = client.get("/dashboard/campaigns/winback_lost").text
        assert "No customer in the store" in preview


# --- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(shop: Shop) -> Iterator[Browser]:
    # After the shop: building it runs the worker (asyncio.run), which must not meet
    # the event loop Playwright's sync API keeps in this thread.
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
def live(dashboard: Dashboard) -> Iterator[LiveServer]:
    with LiveServer(dashboard.app) as server:
        yield server


def screenshot(page: Page, path: Path) -> Image.Image:
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    image = Image.open(path).convert("L")
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 12, f"{path} looks blank"
    return image


def test_sign_in_and_every_page_in_chromium(
    browser: Browser, live: LiveServer, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live.url + "/dashboard")
    expect(page.get_by_text("Sign in with the operator key")).to_be_visible()
    screenshot(page, tmp_path / "01-sign-in.png")

    page.get_by_label("Operator key").fill("not the key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong operator key")
    screenshot(page, tmp_path / "02-wrong-key.png")

    page.get_by_label("Operator key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    expect(page.get_by_role("cell", name="winback_lost", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    expect(page.get_by_text("No channel is paused.")).to_be_visible()
    screenshot(page, tmp_path / "03-overview.png")

    page.get_by_role("link", name="Charts").click()
    expect(page.get_by_role("heading", name="Charts", exact=True)).to_be_visible()
    channel_mix = page.locator("#channel-mix svg")
    expect(channel_mix).to_be_visible()
    expect(page.get_by_role("img", name="Channel mix")).to_be_visible()
    assert channel_mix.bounding_box() is not None and channel_mix.bounding_box()["height"] > 150  # type: ignore[index]
    screenshot(page, tmp_path / "04-charts.png")

    page.goto(live.url + "/dashboard")
    page.locator('a[href="/dashboard/campaigns/winback_lost"]').click()
    expect(page.get_by_role("heading", name="winback_lost")).to_be_visible()
    email = page.frame_locator("iframe.email")
    expect(email.get_by_role("heading", name="It's been a while")).to_be_visible()
    expect(email.get_by_text("COMEBACK15")).to_be_visible()
    screenshot(page, tmp_path / "05-campaign-preview.png")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Sign in with the operator key")).to_be_visible()
    page.goto(live.url + "/dashboard/charts")
    expect(page.get_by_label("Operator key")).to_be_visible()
    page.close()


def test_an_expired_session_in_chromium_goes_back_to_sign_in(
    browser: Browser, live: LiveServer, dashboard: Dashboard, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live.url + "/dashboard/charts")
    page.get_by_label("Operator key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Charts", exact=True)).to_be_visible()
    cookies = [c for c in context.cookies() if c["name"] == COOKIE]
    assert cookies and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    dashboard.clock.at += timedelta(hours=SESSION_HOURS + 1)
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("session has expired")
    screenshot(page, tmp_path / "06-expired.png")
    context.close()


def test_the_shop_has_what_the_pages_show(shop: Shop) -> None:
    with shop.store.connect() as conn:
        states = Counter(
            dict(conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all())
        )
    assert states["sent"] > 50 and states["holdout"] > 0
