"""The webmail reopens a saved draft (issue 8): opened from Drafts, "Edit draft" brings
back its recipients, subject, rich body, attachments (by blobId) and threading; saving
again replaces it, sending destroys it (real Chromium, both backends, checked over IMAP)."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.jmap.conftest import ADDRESS, PASSWORD, JmapNode, message
from tests.web.test_webmail_compose import fetch_one, parts
from tests.web.test_webmail_e2e import (
    browser,
    certificate,
    context,
    go_offline_with_a_copy,
    jmap_settings,
    node,
    sign_in,
    subjects_over_imap,
)

__all__ = ["browser", "certificate", "context", "jmap_settings", "node"]  # fixtures

BOB = "bob@example.test"
CAROL = "carol@example.test"


def wait_for_subjects(node: JmapNode, address: str, mailbox: str, expected: list[str]) -> None:
    """Polled: saving and sending replay asynchronously."""
    deadline = time.monotonic() + 20
    while (found := subjects_over_imap(node, address, mailbox)) != expected:
        assert time.monotonic() < deadline, f"{mailbox} of {address}: {found!r} != {expected!r}"
        time.sleep(0.2)


def test_a_saved_draft_is_reopened_changed_and_sent(
    node: JmapNode, context: BrowserContext, tmp_path: Path
) -> None:
    node.add_account(BOB)
    node.add_account(CAROL)
    raw = message("Budget", message_id="budget@example.test").replace(
        b"From: Bob <bob@example.net>", f"From: Bob <{BOB}>".encode()
    )
    node.deliver(raw)
    attachment = tmp_path / "figures.txt"
    attachment.write_text("1, 2, 3\n")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    expect(page.get_by_role("treeitem", name="Inbox")).to_be_visible()
    page.evaluate("localStorage.setItem('hirondelle.rich-text', 'on')")

    # A rich reply with a Cc and an attachment, saved and closed.
    page.get_by_role("option").filter(has_text="Budget").click()
    page.get_by_role("toolbar", name="Message actions").get_by_role(
        "button", name="Reply", exact=True
    ).click()
    composer = page.get_by_role("dialog", name="New message")
    composer.get_by_label("Cc", exact=True).fill(f"Carol <{CAROL}>")
    composer.get_by_label("Attach files").set_input_files(str(attachment))
    expect(composer.get_by_role("list", name="Attachments")).to_contain_text("figures.txt")
    editor = composer.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("First ")
    page.keyboard.press("Control+B")
    page.keyboard.type("thoughts")
    page.keyboard.press("Control+B")
    composer.get_by_role("button", name="Close").click()
    expect(composer).to_have_count(0)
    wait_for_subjects(node, ADDRESS, "Drafts", ["Re: Budget"])

    # Opened from Drafts and continued.
    page.get_by_role("treeitem", name="Drafts").click()
    page.get_by_role("option").filter(has_text="Re: Budget").click()
    page.get_by_role("toolbar", name="Message actions").get_by_role(
        "button", name="Edit draft"
    ).click()
    composer = page.get_by_role("dialog", name="New message")
    expect(composer.get_by_label("To", exact=True)).to_have_value(f"Bob <{BOB}>")
    expect(composer.get_by_label("Cc", exact=True)).to_have_value(f"Carol <{CAROL}>")
    expect(composer.get_by_label("Subject")).to_have_value("Re: Budget")
    expect(composer.get_by_role("switch", name="Rich text")).to_be_checked()
    editor = composer.get_by_role("textbox", name="Message")
    expect(editor.locator("b")).to_have_text("thoughts")
    expect(editor.locator("blockquote")).to_contain_text("Budget")
    expect(composer.get_by_role("list", name="Attachments")).to_contain_text("figures.txt")

    # Saving again replaces the draft: one version in Drafts, with the new subject. Its
    # attachment was a part of the version just destroyed: the send must follow it to the
    # new version (it failed with invalidProperties before the engine did).
    composer.get_by_label("Subject").fill("Re: Budget (revised)")
    composer.get_by_role("button", name="Save draft").click()
    expect(composer.get_by_role("status")).to_have_text("Draft saved.")
    wait_for_subjects(node, ADDRESS, "Drafts", ["Re: Budget (revised)"])

    composer.get_by_role("button", name="Send").click()
    expect(composer).to_have_count(0)
    received = fetch_one(node, BOB, "INBOX", "Re: Budget (revised)")
    assert received["In-Reply-To"] == "<budget@example.test>"
    assert "<budget@example.test>" in (received["References"] or "")
    assert CAROL in (received["Cc"] or "")
    html = parts(received)["text/html"]
    assert "First <b>thoughts</b>" in html
    assert "<blockquote" in html
    [part] = [p for p in received.walk() if p.get_filename() == "figures.txt"]
    assert part.get_payload(decode=True) == b"1, 2, 3\n"
    fetch_one(node, CAROL, "INBOX", "Re: Budget (revised)")
    # Sending destroyed the draft; the sent message is in Sent.
    wait_for_subjects(node, ADDRESS, "Drafts", [])
    wait_for_subjects(node, ADDRESS, "Sent", ["Re: Budget (revised)"])
    expect(page.get_by_role("alert")).to_have_count(0)  # no conflict
    assert errors == []


def test_a_draft_is_continued_offline_from_the_copy(
    node: JmapNode, context: BrowserContext
) -> None:
    """A draft written elsewhere (appended over IMAP, with an attachment) is in the offline
    copy with its body: it is edited and sent offline, and goes out when the connection
    returns, its attachment intact, the draft gone."""
    node.add_account(BOB)
    draft = (
        f"From: {ADDRESS}\r\nTo: Bob <{BOB}>\r\nSubject: Train notes\r\n"
        "Message-ID: <train-draft@example.test>\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Written at the desk.\r\n"
        "--b\r\nContent-Type: text/plain; name=notes.txt\r\n"
        "Content-Disposition: attachment; filename=notes.txt\r\n\r\n"
        "carriage 12\r\n--b--\r\n"
    ).encode()
    imap = node.imap()
    try:
        imap.login(ADDRESS, PASSWORD)
        assert imap.append('"Drafts"', "(\\Draft \\Seen)", None, draft)[0] == "OK"
    finally:
        imap.logout()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    go_offline_with_a_copy(page, node, context)

    page.get_by_role("treeitem", name="Drafts").click()
    page.get_by_role("option").filter(has_text="Train notes").click()
    page.get_by_role("toolbar", name="Message actions").get_by_role(
        "button", name="Edit draft"
    ).click()
    composer = page.get_by_role("dialog", name="New message")
    expect(composer.get_by_label("To", exact=True)).to_have_value(f"Bob <{BOB}>")
    body = composer.get_by_label("Message")
    expect(body).to_have_value("Written at the desk.")
    expect(composer.get_by_role("list", name="Attachments")).to_contain_text("notes.txt")
    composer.get_by_label("Subject").fill("Train notes, finished")
    body.fill("Written at the desk, finished on the train.")
    composer.get_by_role("button", name="Send").click()
    expect(composer).to_have_count(0)
    expect(page.get_by_role("treeitem", name="Outbox")).to_be_visible()
    assert subjects_over_imap(node, BOB, "INBOX") == []

    context.set_offline(False)
    received = fetch_one(node, BOB, "INBOX", "Train notes, finished")
    [text] = [
        p
        for p in received.walk()
        if p.get_content_type() == "text/plain" and p.get_filename() is None
    ]
    assert b"finished on the train" in text.get_payload(decode=True)
    [part] = [p for p in received.walk() if p.get_filename() == "notes.txt"]
    assert part.get_payload(decode=True) == b"carriage 12"
    wait_for_subjects(node, ADDRESS, "Drafts", [])
    expect(page.get_by_role("alert")).to_have_count(0)
    assert errors == []
