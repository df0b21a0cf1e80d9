"""The webmail end to end: the built app in Chromium (Playwright, Debian's chromium) against
a real node (session API, JMAP over HTTP, IMAP), on both backends."""

from __future__ import annotations

import email
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from hirondelle.config import Settings
from hirondelle.identity.web_offline import WebOfflinePolicy
from tests.jmap.conftest import ADDRESS, PASSWORD, JmapNode, certificate, message, node

__all__ = ["certificate", "node"]  # fixtures of tests/jmap, used here


@pytest.fixture
def jmap_settings(settings: Settings, webapp_build: Path) -> Settings:
    server = settings.server.model_copy(update={"webapp": str(webapp_build)})
    # Three failures lock the account out, so the rate-limit message is quick to reach.
    identity = settings.identity.model_copy(update={"account_failures": 3})
    return settings.model_copy(update={"server": server, "identity": identity})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(locale="en-GB")
    try:
        yield made
    finally:
        made.close()


def sign_in(page: Page, node: JmapNode, *, password: str = PASSWORD) -> None:
    page.goto(node.base_url + "/")
    page.get_by_label("Email address").fill(ADDRESS)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def wait_until(page: Page, script: str, arg: object = None, *, timeout: float = 20) -> None:
    """Poll an async page script until it answers true. (``page.wait_for_function`` does
    not await a promise: an async predicate's promise is truthy at once, so it would not
    wait at all; ``page.evaluate`` does await.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script[:80]}"
        page.wait_for_timeout(100)


HAS_OFFLINE_COPY = (
    "async () => (await indexedDB.databases()).some(d => d.name.startsWith('hirondelle-'))"
)
# The copy can compose offline once it holds the sending identities (kept in its "meta"
# store). Going offline before that leaves the composer without a sending address, which
# it says; the test waits for the copy as a user would for the "Online" status.
HAS_IDENTITIES_COPY = """async () => {
    for (const d of await indexedDB.databases()) {
        if (!d.name.startsWith('hirondelle-') || d.name.includes('people')) continue;
        const db = await new Promise((ok, ko) => {
            const r = indexedDB.open(d.name); r.onsuccess = () => ok(r.result); r.onerror = ko;
        });
        try {
            if (!db.objectStoreNames.contains('meta')) continue;
            const value = await new Promise((ok, ko) => {
                const r = db.transaction('meta').objectStore('meta').get('identities');
                r.onsuccess = () => ok(r.result); r.onerror = ko;
            });
            if (Array.isArray(value) && value.length > 0) return true;
        } finally { db.close(); }
    }
    return false;
}"""


def test_sign_in_and_read_a_message(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Quarterly figures"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    inbox = page.get_by_role("treeitem", name="Inbox")
    expect(inbox).to_be_visible()
    row = page.get_by_role("option").filter(has_text="Quarterly figures")
    expect(row).to_be_visible()
    row.click()
    expect(page.get_by_role("heading", name="Quarterly figures")).to_be_visible()
    frame = page.frame_locator("iframe.body")
    expect(frame.locator("body")).to_contain_text("Body of Quarterly figures")
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
    assert errors == []


def subjects_over_imap(node: JmapNode, address: str, mailbox: str) -> list[str]:
    """The subjects in a mailbox, as an IMAP client sees them."""
    imap = node.imap()
    try:
        assert imap.login(address, PASSWORD)[0] == "OK"
        typ, count = imap.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK", mailbox
        if count == [b"0"]:
            return []
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        return sorted(
            part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)
        )
    finally:
        imap.logout()


def test_a_wrong_password_gets_the_one_generic_message(
    node: JmapNode, context: BrowserContext
) -> None:
    page = context.new_page()
    sign_in(page, node, password="not the password")
    expect(page.get_by_role("alert")).to_have_text(
        "Sign-in failed. Check your address and password, then try again."
    )


def test_offline_reading_moving_and_sending(node: JmapNode, context: BrowserContext) -> None:
    """Offline chosen on this computer: cached mail reads offline, a move and a message
    written offline wait, and both reach the server when the connection returns."""
    node.add_account("bob@example.test")
    node.deliver(message("Kept for the train"))
    node.deliver(message("To archive"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    expect(page.get_by_role("option").filter(has_text="To archive")).to_be_visible()
    page.get_by_role("checkbox", name="Use this computer offline").check()
    # The page reloads into offline mode and resumes the session from its cookie.
    expect(page.get_by_role("option").filter(has_text="Kept for the train")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Use this computer offline")).to_be_checked()
    wait_until(page, HAS_OFFLINE_COPY)
    wait_until(page, HAS_IDENTITIES_COPY)
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()

    context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    page.get_by_role("option").filter(has_text="Kept for the train").click()
    expect(page.frame_locator("iframe.body").locator("body")).to_contain_text(
        "Body of Kept for the train"
    )
    page.get_by_role("option").filter(has_text="To archive").click()
    page.get_by_role("toolbar").get_by_role("button", name="Archive").click()
    expect(page.get_by_role("option").filter(has_text="To archive")).to_have_count(0)

    page.get_by_role("button", name="Write").click()
    composer = page.get_by_role("dialog", name="New message")
    composer.get_by_label("To", exact=True).fill("Bob <bob@example.test>")
    composer.get_by_label("Subject").fill("Written on the train")
    composer.get_by_label("Message").fill("Sent when the connection returns.")
    composer.get_by_role("button", name="Send").click()
    expect(page.get_by_role("treeitem", name="Outbox")).to_be_visible()
    assert subjects_over_imap(node, "bob@example.test", "INBOX") == []

    context.set_offline(False)
    expect(page.get_by_role("treeitem", name="Outbox")).to_have_count(0, timeout=20_000)
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
    assert subjects_over_imap(node, "bob@example.test", "INBOX") == ["Written on the train"]
    assert subjects_over_imap(node, ADDRESS, "Archive") == ["To archive"]
    assert errors == []


def test_sign_out_leaves_nothing_behind(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Private"))
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("checkbox", name="Use this computer offline").check()
    expect(page.get_by_role("option").filter(has_text="Private")).to_be_visible()
    wait_until(page, HAS_OFFLINE_COPY)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    leftovers = page.evaluate(
        """async () => ({
            databases: (await indexedDB.databases()).map(d => d.name),
            caches: await caches.keys(),
            workers: (await navigator.serviceWorker.getRegistrations()).length,
            storage: Object.keys(localStorage).filter(k => k !== 'hirondelle.language'),
        })"""
    )
    assert leftovers == {"databases": [], "caches": [], "workers": 0, "storage": []}
    # The server session is over too: a reload asks to sign in again.
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def enrol_totp(node: JmapNode) -> pyotp.TOTP:
    """An authenticator app for the account, confirmed with the previous step's code (so
    the current code is still unused for the sign-in)."""
    assert node.account is not None
    account = node.account
    enrolment = node.run(node.services.second_factors.begin_totp(account))
    totp = pyotp.TOTP(enrolment.secret)
    node.run(node.services.second_factors.confirm_totp(account, totp.at(time.time() - 30)))
    return totp


def test_sign_in_with_an_authenticator_code(node: JmapNode, context: BrowserContext) -> None:
    totp = enrol_totp(node)
    node.deliver(message("After the second step"))
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("heading", name="Second step")).to_be_visible()
    page.get_by_label("Code from your authenticator app").fill(
        "000000" if totp.now() != "000000" else "111111"
    )
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Sign-in failed. Check your address and password, then try again."
    )
    page.get_by_label("Code from your authenticator app").fill(totp.now())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("option").filter(has_text="After the second step")).to_be_visible()


def test_sign_in_with_a_recovery_code(node: JmapNode, context: BrowserContext) -> None:
    assert node.account is not None
    enrol_totp(node)
    codes = node.run(node.services.second_factors.new_recovery_codes(node.account.id))
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("button", name="Use a recovery code instead").click()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()


def test_rate_limit_shows_when_to_try_again(node: JmapNode, context: BrowserContext) -> None:
    page = context.new_page()
    for _ in range(3):
        sign_in(page, node, password="not the password")
        expect(page.get_by_role("alert")).not_to_have_text("")
    sign_in(page, node, password="still not it")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Too many attempts. Try again in ")
    expect(page.get_by_role("button", name="Sign in")).to_be_disabled()


class Canary:
    """A local HTTP server that records every request a hostile mail makes it receive."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    made = Canary()
    try:
        yield made
    finally:
        made.close()


def hostile_message(base: str) -> bytes:
    html = f"""<html><head><meta http-equiv="refresh" content="0;url={base}/refresh">
<link rel="stylesheet" href="{base}/link.css">
<style>@import url("{base}/import.css"); body {{ background: url({base}/bg.png) }}</style>
<script>fetch("{base}/script"); window.CANARY = 1;</script></head>
<body onload="fetch('{base}/onload')">
<p>Hostile <b>content</b></p>
<img src="{base}/pixel.png" onerror="fetch('{base}/onerror')">
<img src="x" onerror="fetch('{base}/onerror2')">
<a href="javascript:fetch('{base}/js')">link</a>
<form action="{base}/form" method="post"><input name="p" value="x"><button>go</button></form>
<div style="background-image:url('{base}/inline.png')">styled</div>
<svg><script>fetch("{base}/svg")</script><image href="{base}/svg.png"/></svg>
<iframe src="{base}/frame"></iframe><object data="{base}/object"></object>
</body></html>"""
    headers = (
        "From: Mallory <mallory@example.net>\r\n"
        f"To: {ADDRESS}\r\nSubject: Totally harmless\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return (headers + html).encode()


def test_hostile_mail_runs_nothing_and_loads_nothing(
    node: JmapNode, context: BrowserContext, canary: Canary
) -> None:
    node.deliver(hostile_message(canary.base))
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, node)
    page.get_by_role("option").filter(has_text="Totally harmless").click()
    body = page.frame_locator("iframe.body").locator("body")
    expect(body).to_contain_text("Hostile content")
    expect(page.get_by_text("Remote images are blocked to protect your privacy.")).to_be_visible()
    # Give anything that would run or load the time to do so, then look.
    page.wait_for_timeout(1000)
    # The javascript: link lost its href: clicking its text does nothing.
    page.frame_locator("iframe.body").get_by_text("link", exact=True).click()
    page.wait_for_timeout(300)
    assert canary.paths == []
    assert not [url for url in requests if url.startswith(canary.base)]
    assert page.evaluate("window.CANARY") is None


def test_search_highlights_matches(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Budget for 2027"))
    node.deliver(message("Lunch on Friday"))
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("option")).to_have_count(2)
    page.get_by_role("searchbox", name="Search mail").fill("budget")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("listbox", name="Messages")
    expect(results.get_by_role("option")).to_have_count(1)
    expect(results.locator("mark").first).to_have_text("Budget", ignore_case=True)


def test_reply_with_an_attachment_reaches_the_other_account(
    node: JmapNode, context: BrowserContext, tmp_path: Path
) -> None:
    node.add_account("bob@example.test")
    raw = message("Can you send the plan?", message_id="plan@example.test").replace(
        b"From: Bob <bob@example.net>", b"From: Bob <bob@example.test>"
    )
    node.deliver(raw)
    attachment = tmp_path / "plan.txt"
    attachment.write_text("step one, step two\n")
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("option").filter(has_text="Can you send the plan?").click()
    page.get_by_role("toolbar").get_by_role("button", name="Reply", exact=True).click()
    composer = page.get_by_role("dialog", name="New message")
    expect(composer.get_by_label("To", exact=True)).to_have_value("Bob <bob@example.test>")
    expect(composer.get_by_label("Subject")).to_have_value("Re: Can you send the plan?")
    composer.get_by_label("Attach files").set_input_files(str(attachment))
    expect(composer.get_by_role("list", name="Attachments")).to_contain_text("plan.txt")
    composer.get_by_role("button", name="Send").click()
    expect(composer).to_have_count(0)

    deadline = time.monotonic() + 20
    while subjects_over_imap(node, "bob@example.test", "INBOX") != ["Re: Can you send the plan?"]:
        assert time.monotonic() < deadline, "the reply did not arrive"
        time.sleep(0.2)
    imap = node.imap()
    try:
        imap.login("bob@example.test", PASSWORD)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1", "(RFC822)")
        assert typ == "OK" and isinstance(data[0], tuple)
    finally:
        imap.logout()
    received = email.message_from_bytes(data[0][1])
    assert received["In-Reply-To"] == "<plan@example.test>"
    names = [part.get_filename() for part in received.walk() if part.get_filename()]
    assert names == ["plan.txt"]
    [part] = [part for part in received.walk() if part.get_filename() == "plan.txt"]
    assert part.get_payload(decode=True) == b"step one, step two\n"


def test_the_administrator_switch_purges_the_offline_copy(
    node: JmapNode, context: BrowserContext
) -> None:
    node.deliver(message("Confidential"))
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("checkbox", name="Use this computer offline").check()
    expect(page.get_by_role("option").filter(has_text="Confidential")).to_be_visible()
    wait_until(page, HAS_OFFLINE_COPY)
    node.run(WebOfflinePolicy(node.services.database).set_account(ADDRESS, allowed=False))
    # The app asks again whenever its connection comes back.
    context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    context.set_offline(False)
    expect(page.get_by_text("Your administrator turned off offline use")).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_role("checkbox", name="Use this computer offline")).to_be_disabled()
    assert page.evaluate("async () => (await indexedDB.databases()).map(d => d.name)") == []


def go_offline_with_a_copy(page: Page, node: JmapNode, context: BrowserContext) -> None:
    """Sign in, choose offline use, wait for the copy, then cut the network."""
    sign_in(page, node)
    page.get_by_role("checkbox", name="Use this computer offline").check()
    expect(page.get_by_role("checkbox", name="Use this computer offline")).to_be_checked()
    wait_until(page, HAS_OFFLINE_COPY)
    wait_until(page, HAS_IDENTITIES_COPY)
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
    context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()


def test_a_conflict_is_shown_not_dropped(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Deleted elsewhere"))
    page = context.new_page()
    go_offline_with_a_copy(page, node, context)
    row = page.get_by_role("option").filter(has_text="Deleted elsewhere")
    row.click()
    page.get_by_role("toolbar").get_by_role("button", name="Flag").click()
    # Meanwhile another client deletes it for good.
    imap = node.imap()
    try:
        imap.login(ADDRESS, PASSWORD)
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "(\\Deleted)")
        imap.expunge()
    finally:
        imap.logout()
    context.set_offline(False)
    expect(page.get_by_role("alert")).to_contain_text("The message was deleted meanwhile.")
    expect(page.get_by_role("option").filter(has_text="Deleted elsewhere")).to_have_count(0)
    # Two actions were queued on it (opening marked it read, then the flag): both shown.
    dismiss = page.get_by_role("alert").get_by_role("button", name="Dismiss")
    expect(dismiss).to_have_count(2)
    # One at a time: a second click before the first is applied would hit the same button.
    dismiss.first.click()
    expect(dismiss).to_have_count(1)
    dismiss.first.click()
    expect(page.get_by_role("alert")).to_have_count(0)


def test_search_offline_in_the_copy(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Minutes of the board"))
    node.deliver(message("Holiday photos"))
    page = context.new_page()
    go_offline_with_a_copy(page, node, context)
    page.get_by_role("searchbox", name="Search mail").fill("board")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("listbox", name="Messages")
    expect(results.get_by_role("option")).to_have_count(1)
    expect(results.locator("mark").first).to_have_text("board")


# Whether the offline copy (IndexedDB) holds an email with this subject and its body.
CACHED_SUBJECT = """async (subject) => {
    const [info] = (await indexedDB.databases()).filter(d => d.name.startsWith('hirondelle-'));
    if (!info) return false;
    const db = await new Promise((ok, fail) => {
        const request = indexedDB.open(info.name);
        request.onsuccess = () => ok(request.result);
        request.onerror = () => fail(request.error);
    });
    const all = (store) => new Promise((ok) => {
        const request = db.transaction(store).objectStore(store).getAll();
        request.onsuccess = () => ok(request.result);
    });
    const emails = await all('emails');
    const bodies = await all('bodies');
    db.close();
    const email = emails.find(e => e.subject === subject);
    return !!email && bodies.some(b => b.emailId === email.id);
}"""


def test_settings_keep_a_chosen_folder_offline(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Filed report"))
    imap = node.imap()
    try:
        imap.login(ADDRESS, PASSWORD)
        imap.select("INBOX")
        assert imap.uid("MOVE", "1:*", "Archive")[0] == "OK"
    finally:
        imap.logout()
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("checkbox", name="Use this computer offline").check()
    expect(page.get_by_role("checkbox", name="Use this computer offline")).to_be_checked()
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
    page.get_by_role("button", name="Settings").click()
    settings = page.get_by_role("dialog", name="Settings")
    expect(settings.get_by_role("checkbox", name="Inbox")).to_be_disabled()
    settings.get_by_role("checkbox", name="Archive").check()
    settings.get_by_role("button", name="Save").click()
    expect(settings.get_by_role("status")).to_have_text("Settings saved.")
    settings.get_by_role("button", name="Close").click()
    wait_until(page, CACHED_SUBJECT, "Filed report")

    context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    page.get_by_role("treeitem", name="Archive").click()
    page.get_by_role("option").filter(has_text="Filed report").click()
    expect(page.frame_locator("iframe.body").locator("body")).to_contain_text(
        "Body of Filed report"
    )


def test_conversation_view(node: JmapNode, context: BrowserContext) -> None:
    node.deliver(message("Plan", message_id="plan-1@example.net"))
    node.deliver(
        message("Re: Plan", message_id="plan-2@example.net", in_reply_to="plan-1@example.net")
    )
    page = context.new_page()
    sign_in(page, node)
    page.get_by_role("option").filter(has_text="Re: Plan").click()
    conversation = page.get_by_role("region", name="Conversation of 2 messages")
    earlier = conversation.get_by_role("button").filter(has_text="Body of Plan")
    expect(earlier).to_have_attribute("aria-expanded", "false")
    earlier.click()
    expect(earlier).to_have_attribute("aria-expanded", "true")
    expect(page.frame_locator("iframe.thread-body").locator("body")).to_contain_text("Body of Plan")


def test_typing_as_soon_as_the_composer_opens_is_kept(
    node: JmapNode, context: BrowserContext
) -> None:
    """Regression (CI run of session 2): the composer filled its fields from the draft in an
    effect after its first render, so a recipient typed in between was wiped and Send said
    'Add at least one recipient.' Here the recipient is typed in the very task in which the
    field appears, before any effect can run."""
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    page.evaluate(
        """() => new Promise((resolve) => {
            const observer = new MutationObserver(() => {
                const field = document.querySelector('[role=dialog] input[role=combobox]');
                if (!field) return;
                observer.disconnect();
                field.value = 'Bob <bob@example.test>';
                field.dispatchEvent(new Event('input', { bubbles: true }));
                resolve(null);
            });
            observer.observe(document.body, { childList: true, subtree: true });
            [...document.querySelectorAll('button')].find((b) => b.textContent === 'Write').click();
        })"""
    )
    composer = page.get_by_role("dialog", name="New message")
    page.wait_for_timeout(300)  # long enough for every effect and timer of the opening
    expect(composer.get_by_label("To", exact=True)).to_have_value("Bob <bob@example.test>")
