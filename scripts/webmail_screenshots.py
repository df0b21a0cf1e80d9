"""Take the webmail's screenshots for docs/ (inbox, a conversation, the composer in rich text
with address completion, several messages selected, offline).

A throw-away node on a free port with one account and a few messages, the built webmail
(``webapp/dist``, from scripts/setup.sh), and Debian's Chromium driven by Playwright::

    .venv/bin/python scripts/webmail_screenshots.py [--out docs/screenshots] [--lang fr]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.services import open_services
from hirondelle.web import assets

ADDRESS = "camille@example.org"
PASSWORD = "screenshot-password-1"

MESSAGES = [
    (
        "Louis Martin <louis@example.org>",
        "Réunion de rentrée",
        "",
        "",
        "Bonjour à toutes et à tous,\n\n"
        "La réunion de rentrée aura lieu jeudi à 10 h en salle 2.\n\nLouis",
    ),
    (
        "Camille Durand <camille@example.org>",
        "Re: Réunion de rentrée",
        "",
        "",
        "Je serai là, avec le budget.\n\nCamille",
    ),
    (
        "Inès Haddad <ines@example.org>",
        "Budget 2027 — version 3",
        "",
        "",
        "Voici la version 3 du budget, avec les remarques de mardi.",
    ),
    (
        "Support <support@example.net>",
        "Your ticket #4821 was updated",
        "",
        "",
        "A technician answered your request about the printer on floor 2.",
    ),
    (
        "Paul Lefèvre <paul@example.org>",
        "Déjeuner vendredi ?",
        "",
        "",
        "On se retrouve à la cantine vers 12 h 30 ?",
    ),
]


COLLEAGUES = [
    ("louis@example.org", "Louis Martin"),
    ("ines@example.org", "Inès Haddad"),
    ("lucie@example.org", "Lucie Moreau"),
]


def raw_message(sender: str, subject: str, number: int, reply_to: int | None) -> bytes:
    headers = [
        f"From: {sender}",
        f"To: Camille Durand <{ADDRESS}>",
        f"Subject: {subject}",
        f"Date: Mon, 23 Nov 2026 0{number}:1{number}:00 +0100",
        f"Message-ID: <m{number}@example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if reply_to is not None:
        headers += [
            f"In-Reply-To: <m{reply_to}@example.org>",
            f"References: <m{reply_to}@example.org>",
        ]
    body = MESSAGES[number][4].replace("\n", "\r\n")
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


async def shoot(out: Path, language: str) -> None:
    build = assets.SOURCE_TREE_BUILD
    if assets.find_build(str(build)) is None:
        raise SystemExit("webapp/dist is missing: run scripts/setup.sh (Node.js 20) first")
    with tempfile.TemporaryDirectory(prefix="hirondelle-shots-") as directory:
        data = Path(directory)
        settings = Settings.model_validate(
            {
                "data_dir": data,
                "server": {"hostname": "localhost", "webapp": str(build)},
                "listen": ListenSettings.model_validate({"http": "127.0.0.1:0"}).model_dump(),
            }
        )
        services = open_services(settings)
        try:
            await services.accounts.add_domain("example.org")
            account = await services.accounts.add_account(
                ADDRESS, password=PASSWORD, display_name="Camille Durand"
            )
            # Colleagues in the domain directory, for address completion.
            for colleague, name in COLLEAGUES:
                await services.accounts.add_account(colleague, password=PASSWORD, display_name=name)
            for number, (sender, subject, *_rest) in enumerate(MESSAGES):
                reply_to = 0 if number == 1 else None
                await services.mail.deliver(
                    raw_message(sender, subject, number, reply_to), [account.id]
                )
        finally:
            services.close()
        node = Node(settings)
        await node.start()
        try:
            listener = next(item for item in node.listeners if item.name == "http")
            await drive(f"http://{listener.address}", out, language)
        finally:
            await node.stop()


async def drive(base: str, out: Path, language: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        context = await browser.new_context(
            locale="fr-FR" if language == "fr" else "en-GB", viewport={"width": 1280, "height": 760}
        )
        page = await context.new_page()
        await page.goto(base + "/")
        await page.locator("input[type=email]").fill(ADDRESS)
        await page.locator("input[type=password]").fill(PASSWORD)
        await page.locator("form button[type=submit]").click()
        await page.locator(".row").first.wait_for()
        await page.wait_for_timeout(300)
        await save(page, out / "webmail-inbox.png")

        await page.locator(".row").filter(has_text="Re: Réunion").click()
        await page.locator(".conversation .thread-item").first.click()
        await page.locator("iframe.thread-body").wait_for()
        await page.wait_for_timeout(300)
        await save(page, out / "webmail-conversation.png")

        await page.locator(".row").filter(has_text="Déjeuner vendredi").click()
        await page.locator("iframe.body").wait_for()
        # The composer in rich text (the switch is remembered on the device), with the
        # suggestions of the directory open under Cc.
        await page.evaluate("localStorage.setItem('hirondelle.rich-text', 'on')")
        await page.locator(".reader .toolbar button").first.click()
        editor = page.locator(".composer .editor")
        await editor.wait_for()
        await page.keyboard.type("Avec plaisir, ")
        await page.keyboard.press("Control+B")
        await page.keyboard.type("à vendredi")
        await page.keyboard.press("Control+B")
        await page.keyboard.type(" !")
        await page.locator(".composer input[role=combobox]").nth(1).press_sequentially("lu")
        await page.locator(".composer .suggestions li").first.wait_for()
        await page.wait_for_timeout(200)
        await save(page, out / "webmail-composer.png")
        await page.locator(".composer input[role=combobox]").nth(1).press("Escape")
        await page.keyboard.press("Escape")
        await page.locator(".composer").wait_for(state="detached")

        # Several messages selected, ready to be dragged onto a folder.
        await page.locator(".row").nth(1).locator("input[type=checkbox]").check()
        await page.locator(".row").nth(3).locator("input[type=checkbox]").check()
        await page.locator(".selection-bar").wait_for()
        await page.wait_for_timeout(200)
        await save(page, out / "webmail-selection.png")
        await page.keyboard.press("Escape")

        await context.set_offline(True)
        await page.locator(".status-offline").wait_for()
        await save(page, out / "webmail-offline.png")
        await browser.close()


async def save(page: Page, path: Path) -> None:
    await page.screenshot(path=str(path))
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--lang", choices=["en", "fr"], default="fr")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(arguments.out, arguments.lang))


if __name__ == "__main__":
    main()
