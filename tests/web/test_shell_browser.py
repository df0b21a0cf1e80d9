"""The built webmail in a real Chromium, served by the node under its strict CSP: the shell
starts with no CSP violation and no uncaught error, speaks the browser's language, and
shows the sign-in and password-reset screens. (Sign-in, mail and offline end-to-end tests
come with the session API and JMAP; docs/architecture.md lists them.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from hirondelle.node import Node
from tests.web.conftest import base_url

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, url: str, *, locale: str) -> tuple[Page, list[str]]:
    context = await browser.new_context(locale=locale)
    await context.add_init_script(RECORD_VIOLATIONS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page, errors


async def test_shell_starts_under_the_csp_in_english(browser: Browser, webmail_node: Node) -> None:
    page, errors = await open_page(browser, base_url(webmail_node) + "/", locale="en-GB")
    await page.get_by_role("heading", name="Sign in").wait_for()
    stay = page.get_by_role("checkbox", name="Stay signed in on this computer")
    assert not await stay.is_checked()
    assert "shared or public computer" in await page.locator("#stay-warning").inner_text()
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.evaluate("window.__violations") == []
    assert errors == []


async def test_shell_speaks_french_and_switches(browser: Browser, webmail_node: Node) -> None:
    page, errors = await open_page(browser, base_url(webmail_node) + "/", locale="fr-FR")
    await page.get_by_role("heading", name="Connexion").wait_for()
    assert await page.get_by_label("Adresse électronique").is_visible()
    await page.get_by_role("button", name="Langue").click()
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.evaluate("window.__violations") == []
    assert errors == []


async def test_password_reset_page(browser: Browser, webmail_node: Node) -> None:
    url = base_url(webmail_node) + "/reset-password#token=abc"
    page, errors = await open_page(browser, url, locale="en-GB")
    await page.get_by_role("heading", name="Choose a new password").wait_for()
    await page.get_by_label("New password", exact=True).fill("one-password")
    await page.get_by_label("New password again").fill("another-password")
    await page.get_by_role("button", name="Set the password").click()
    await page.get_by_role("alert").filter(has_text="The two passwords differ.").wait_for()
    assert await page.evaluate("window.__violations") == []
    assert errors == []
