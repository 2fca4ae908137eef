"""A real browser unsubscribes and changes preferences, with JavaScript switched off.

Debian's chromium (``/usr/bin/chromium``) driven by Playwright against the API
served by uvicorn on 127.0.0.1 (``live_api``). Playwright never downloads a
browser here; without chromium the test fails and says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from narrowcast.store import Store
from tests.api.conftest import Api, LiveServer
from tests.api.test_pages import EVIL_NAME, add_customer, engagement, marketing_consent

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        found = shutil.which("chromium")
        pytest.fail(
            f"chromium is not at {CHROMIUM} (on PATH: {found}) — install Debian's chromium "
            "package (apt-get install chromium); these tests never download a browser"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def page_without_js(browser: Browser, locale: str = "en-GB") -> Page:
    context = browser.new_context(java_script_enabled=False, locale=locale)
    return context.new_page()


def shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_unsubscribe_with_one_button_and_no_javascript(
    browser: Browser, live_api: tuple[Api, LiveServer], tmp_path: Path
) -> None:
    api, _ = live_api
    store: Store = api.store
    add_customer(
        store, "c-1", email="ana@example.com", first_name=EVIL_NAME, marketing={"email": True}
    )
    page = page_without_js(browser)
    response = page.goto(api.links.unsubscribe("c-1", channel="email", purpose="marketing"))
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Unsubscribe"
    # The name is shown as text: no element was made from it.
    assert EVIL_NAME in page.locator("p").first.inner_text()
    assert page.locator("script").count() == 0 and page.locator("b").count() == 0
    shot(page, tmp_path, "1-unsubscribe")
    assert marketing_consent(store, "c-1") == {"email": (True, "signup")}

    page.get_by_role("button", name="Unsubscribe from email marketing").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("You are unsubscribed")
    assert not page.locator("#marketing-email").is_checked()
    shot(page, tmp_path, "2-unsubscribed")

    assert marketing_consent(store, "c-1") == {"email": (False, "preference centre")}
    [event] = engagement(store, "message_unsubscribed")
    assert event["properties"] == {"channel": "email", "source": "preference centre"}
    page.context.close()


def test_preference_centre_in_spanish(
    browser: Browser, live_api: tuple[Api, LiveServer], tmp_path: Path
) -> None:
    api, _ = live_api
    store: Store = api.store
    add_customer(
        store,
        "es-1",
        email="lucia@example.es",
        first_name="Lucía",
        locale="es-ES",
        marketing={"email": True},
    )
    page = page_without_js(browser, locale="en-GB")  # the customer's locale wins
    response = page.goto(api.links.preferences("es-1"))
    assert response is not None and response.status == 200
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("h1").inner_text() == "Tus preferencias de mensajes"
    assert page.get_by_text("Hola, Lucía.").is_visible()
    assert page.get_by_label("correo electrónico").is_checked()
    assert not page.get_by_label("notificaciones push").is_checked()
    shot(page, tmp_path, "3-preferencias")

    page.get_by_label("correo electrónico").uncheck()
    page.get_by_label("notificaciones push").check()
    page.get_by_role("button", name="Guardar mis preferencias").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Hemos guardado tus preferencias")
    assert not page.get_by_label("correo electrónico").is_checked()
    assert page.get_by_label("notificaciones push").is_checked()
    shot(page, tmp_path, "4-guardado")

    consent = marketing_consent(store, "es-1")
    assert consent["email"] == (False, "preference centre")
    assert consent["push"] == (True, "preference centre")
    page.context.close()


def test_a_broken_link_in_the_browser(
    browser: Browser, live_api: tuple[Api, LiveServer], tmp_path: Path
) -> None:
    api, _ = live_api
    page = page_without_js(browser, locale="pl-PL")
    response = page.goto(api.links.unsubscribe("c-1", channel="email")[:-6])
    assert response is not None and response.status == 400
    assert page.locator("h1").inner_text() == "Ten link jest uszkodzony"
    shot(page, tmp_path, "5-broken-pl")
    page.context.close()
