"""The webmail's composer in rich text: the formatting toolbar and shortcuts, the switch
between rich and plain (remembered), multipart/alternative as received over IMAP, drafts
that keep their HTML, rich replies quoting the original (real Chromium, both backends)."""

from __future__ import annotations

import email
import time
from email.message import Message

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.jmap.conftest import ADDRESS, PASSWORD, JmapNode, message
from tests.web.test_webmail_e2e import (
    browser,
    certificate,
    context,
    jmap_settings,
    node,
    sign_in,
    subjects_over_imap,
)

__all__ = ["browser", "certificate", "context", "jmap_settings", "node"]  # fixtures

BOB = "bob@example.test"


def fetch_one(node: JmapNode, address: str, mailbox: str, subject: str) -> Message:
    """The message with ``subject`` in ``mailbox``, as an IMAP client receives it (polled:
    sending and saving replay asynchronously)."""
    deadline = time.monotonic() + 20
    while subject not in subjects_over_imap(node, address, mailbox):
        assert time.monotonic() < deadline, f"{subject!r} never reached {mailbox}"
        time.sleep(0.2)
    imap = node.imap()
    try:
        imap.login(address, PASSWORD)
        imap.select(f'"{mailbox}"', readonly=True)
        typ, found = imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and found[0], found
        typ, data = imap.fetch(found[0].split()[-1], "(RFC822)")
        assert typ == "OK" and isinstance(data[0], tuple)
    finally:
        imap.logout()
    return email.message_from_bytes(data[0][1])


def parts(received: Message) -> dict[str, str]:
    """content type -> decoded text, for the text parts."""
    found: dict[str, str] = {}
    for part in received.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def open_composer(page: Page) -> Locator:
    page.get_by_role("button", name="Write").click()
    return page.get_by_role("dialog", name="New message")


def test_rich_message_arrives_as_html_and_generated_text(
    node: JmapNode, context: BrowserContext
) -> None:
    node.add_account(BOB)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    composer = open_composer(page)
    switch = composer.get_by_role("switch", name="Rich text")
    expect(switch).not_to_be_checked()
    switch.check()
    toolbar = composer.get_by_role("toolbar", name="Formatting")
    bold = toolbar.get_by_role("button", name="Bold")
    expect(bold).to_have_attribute("aria-pressed", "false")
    composer.get_by_label("To", exact=True).fill(f"Bob <{BOB}>")
    composer.get_by_label("Subject").fill("Rich hello")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.type("Hello ")
    page.keyboard.press("Control+B")
    expect(bold).to_have_attribute("aria-pressed", "true")
    page.keyboard.type("bold")
    page.keyboard.press("Control+B")
    page.keyboard.type(" and ")
    page.keyboard.press("Control+I")
    page.keyboard.type("italic")
    page.keyboard.press("Control+I")
    page.keyboard.press("Enter")
    toolbar.get_by_role("button", name="Bulleted list").click()
    expect(toolbar.get_by_role("button", name="Bulleted list")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.type("first item")
    page.keyboard.press("Enter")
    page.keyboard.type("second item")
    composer.get_by_role("button", name="Send").click()
    expect(composer).to_have_count(0)

    received = fetch_one(node, BOB, "INBOX", "Rich hello")
    assert received.get_content_type() == "multipart/alternative"
    bodies = parts(received)
    assert set(bodies) == {"text/plain", "text/html"}
    html = bodies["text/html"]
    assert "<b>bold</b>" in html and "<i>italic</i>" in html
    assert "<ul><li>first item</li><li>second item</li></ul>" in html
    text = bodies["text/plain"].replace("\r\n", "\n")
    assert "Hello bold and italic" in text
    assert "- first item\n- second item" in text
    assert "<" not in text.split("-- ")[0]

    # The switch is remembered for the next message.
    composer = open_composer(page)
    expect(composer.get_by_role("switch", name="Rich text")).to_be_checked()
    expect(composer.get_by_role("textbox", name="Message")).to_be_visible()
    assert errors == []


def test_switching_to_plain_keeps_the_words_and_sends_text_only(
    node: JmapNode, context: BrowserContext
) -> None:
    node.add_account(BOB)
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    composer = open_composer(page)
    composer.get_by_label("Message").fill("Line one\n\nLine two")
    composer.get_by_role("switch", name="Rich text").check()
    editor = composer.get_by_role("textbox", name="Message")
    expect(editor.locator("p")).to_have_count(2)
    editor.locator("p").first.click()
    page.keyboard.press("End")
    page.keyboard.type(" more")
    composer.get_by_role("switch", name="Rich text").uncheck()
    expect(composer.get_by_label("Message")).to_have_value("Line one more\n\nLine two")
    composer.get_by_label("To", exact=True).fill(BOB)
    composer.get_by_label("Subject").fill("Plain again")
    composer.get_by_role("button", name="Send").click()
    received = fetch_one(node, BOB, "INBOX", "Plain again")
    assert received.get_content_type() == "text/plain"
    assert "Line one more" in parts(received)["text/plain"]


def test_hostile_paste_and_links_are_sanitised_before_sending(
    node: JmapNode, context: BrowserContext
) -> None:
    node.add_account(BOB)
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    composer = open_composer(page)
    composer.get_by_role("switch", name="Rich text").check()
    composer.get_by_label("To", exact=True).fill(BOB)
    composer.get_by_label("Subject").fill("Pasted")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.type("see ")
    page.once("dialog", lambda dialog: dialog.accept("example.org/page"))
    composer.get_by_role("toolbar", name="Formatting").get_by_role("button", name="Link").click()
    expect(editor.get_by_role("link")).to_have_text("https://example.org/page")
    page.keyboard.press("Enter")
    # A paste of HTML with a script, a handler and a remote image.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.setData('text/html',
                '<p onclick="alert(1)">pasted <img src="https://tracker.test/p.png">' +
                '<script>alert(2)</script><a href="javascript:alert(3)">bad</a></p>');
            const paste = new ClipboardEvent(
                'paste', { clipboardData: data, bubbles: true, cancelable: true });
            document.getElementById('composer-editor').dispatchEvent(paste);
        }"""
    )
    expect(editor).to_contain_text("pasted")
    expect(editor.locator("img")).to_have_count(0)
    composer.get_by_role("button", name="Send").click()
    html = parts(fetch_one(node, BOB, "INBOX", "Pasted"))["text/html"]
    assert '<a href="https://example.org/page">https://example.org/page</a>' in html
    for forbidden in ("onclick", "<img", "<script", "javascript:", "tracker.test"):
        assert forbidden not in html


def test_rich_reply_quotes_the_html_and_the_draft_keeps_it(
    node: JmapNode, context: BrowserContext
) -> None:
    html_mail = (
        f"From: Bob <{BOB}>\r\nTo: {ADDRESS}\r\nSubject: Styled news\r\n"
        "Message-ID: <styled@example.test>\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>The <b>original</b> words</p><script>alert(1)</script>\r\n"
    ).encode()
    node.add_account(BOB)
    node.deliver(html_mail)
    node.deliver(message("Unrelated"))
    page = context.new_page()
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    page.evaluate("localStorage.setItem('hirondelle.rich-text', 'on')")
    page.get_by_role("option").filter(has_text="Styled news").click()
    page.get_by_role("toolbar", name="Message actions").get_by_role(
        "button", name="Reply", exact=True
    ).click()
    composer = page.get_by_role("dialog", name="New message")
    editor = composer.get_by_role("textbox", name="Message")
    expect(editor.locator("blockquote b")).to_have_text("original")
    expect(editor.locator("script")).to_have_count(0)
    page.keyboard.type("My answer")  # the caret starts above the quote
    composer.get_by_role("button", name="Save draft").click()
    expect(composer.get_by_role("status")).to_have_text("Draft saved.")
    expect(page.get_by_role("alert")).to_have_count(0)  # no conflict: the save replays

    draft = parts(fetch_one(node, ADDRESS, "Drafts", "Re: Styled news"))
    assert "My answer" in draft["text/html"]
    quote = '<blockquote type="cite"><p>The <b>original</b> words</p></blockquote>'
    assert quote in "".join(draft["text/html"].split("\r\n"))
    assert "> The original words" in draft["text/plain"].replace("\r\n", "\n")

    composer.get_by_role("button", name="Send").click()
    received = fetch_one(node, BOB, "INBOX", "Re: Styled news")
    assert received["In-Reply-To"] == "<styled@example.test>"
    sent = parts(received)
    assert sent["text/html"].index("My answer") < sent["text/html"].index("<blockquote")
