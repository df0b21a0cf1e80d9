"""The webmail reopens a saved draft (issue 8): opened from Drafts, "Edit draft" brings
back its recipients, subject, rich body, attachments (by blobId) and threading; saving
again replaces it, sending destroys it (real Chromium, both backends, checked over IMAP)."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.jmap.conftest import ADDRESS, JmapNode, message
from tests.web.test_webmail_compose import fetch_one, parts
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
