"""The webmail's message list with several messages selected: checkboxes, Ctrl/Shift and
keyboard selection, commands on the selection and drag and drop onto the mailbox tree,
online and offline, checked over IMAP (real Chromium, real node, both backends)."""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.jmap.conftest import ADDRESS, JmapNode, message
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


def wait_for_imap(node: JmapNode, mailbox: str, subjects: list[str]) -> None:
    """Replay is asynchronous: poll IMAP until the mailbox holds exactly ``subjects``."""
    deadline = time.monotonic() + 20
    while (found := subjects_over_imap(node, ADDRESS, mailbox)) != sorted(subjects):
        assert time.monotonic() < deadline, f"{mailbox} holds {found}, expected {subjects}"
        time.sleep(0.2)


def rows(page: Page) -> Locator:
    return page.get_by_role("listbox", name="Messages").get_by_role("option")


def test_drag_two_selected_messages_to_archive(node: JmapNode, context: BrowserContext) -> None:
    for subject in ("First to file", "Second to file", "Stays in the inbox"):
        node.deliver(message(subject))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    first = rows(page).filter(has_text="First to file")
    second = rows(page).filter(has_text="Second to file")
    expect(rows(page)).to_have_count(3)
    first.locator("input[type=checkbox]").check()
    second.click(modifiers=["ControlOrMeta"])
    bar = page.get_by_role("toolbar", name="Selected messages")
    expect(bar.get_by_role("status")).to_have_text("2 selected")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(second).to_have_attribute("aria-selected", "true")
    expect(rows(page).filter(has_text="Stays in the inbox")).to_have_attribute(
        "aria-selected", "false"
    )

    second.drag_to(page.get_by_role("treeitem", name="Archive"))
    expect(rows(page)).to_have_count(1)
    expect(bar).to_have_count(0)
    wait_for_imap(node, "Archive", ["First to file", "Second to file"])
    assert subjects_over_imap(node, ADDRESS, "INBOX") == ["Stays in the inbox"]
    assert errors == []


def test_dragging_an_unselected_row_moves_only_that_row(
    node: JmapNode, context: BrowserContext
) -> None:
    for subject in ("Checked one", "Dragged one"):
        node.deliver(message(subject))
    page = context.new_page()
    sign_in(page, node)
    expect(rows(page)).to_have_count(2)
    rows(page).filter(has_text="Checked one").locator("input[type=checkbox]").check()
    rows(page).filter(has_text="Dragged one").drag_to(page.get_by_role("treeitem", name="Trash"))
    wait_for_imap(node, "Trash", ["Dragged one"])
    assert subjects_over_imap(node, ADDRESS, "INBOX") == ["Checked one"]


def test_keyboard_and_shift_click_selection_with_commands(
    node: JmapNode, context: BrowserContext
) -> None:
    """Shift+Down extends from the open message, Space toggles, Shift+click takes a range;
    the toolbar flags and marks them, Escape clears."""
    for subject in ("Mail 1", "Mail 2", "Mail 3", "Mail 4"):
        node.deliver(message(subject))
    page = context.new_page()
    sign_in(page, node)
    expect(rows(page)).to_have_count(4)
    ordered = [rows(page).nth(i) for i in range(4)]
    ordered[0].click()
    expect(ordered[0]).to_have_attribute("aria-current", "true")
    page.keyboard.press("Shift+ArrowDown")
    bar = page.get_by_role("toolbar", name="Selected messages")
    expect(bar.get_by_role("status")).to_have_text("2 selected")
    page.keyboard.press("Space")  # the second row, now open, leaves the selection
    expect(bar.get_by_role("status")).to_have_text("1 selected")
    page.keyboard.press("Escape")
    expect(bar).to_have_count(0)

    ordered[0].click()
    expect(ordered[0]).to_have_attribute("aria-current", "true")
    ordered[2].click(modifiers=["Shift"])
    expect(bar.get_by_role("status")).to_have_text("3 selected")
    bar.get_by_role("button", name="Flag", exact=True).click()
    expect(bar).to_have_count(0)
    expect(page.get_by_role("listbox", name="Messages").get_by_label("Flagged")).to_have_count(3)

    imap = node.imap()
    deadline = time.monotonic() + 20
    try:
        imap.login(ADDRESS, "correct horse battery")
        while True:
            imap.select("INBOX", readonly=True)
            typ, data = imap.search(None, "FLAGGED")
            assert typ == "OK"
            if len(data[0].split()) == 3:
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.2)
        typ, data = imap.search(None, "UNFLAGGED")
        assert len(data[0].split()) == 1
    finally:
        imap.logout()


def test_commands_on_a_selection_offline_reach_the_server_later(
    node: JmapNode, context: BrowserContext
) -> None:
    for subject in ("Old news", "Older news", "Keep me"):
        node.deliver(message(subject))
    page = context.new_page()
    go_offline_with_a_copy(page, node, context)
    expect(rows(page)).to_have_count(3)
    rows(page).filter(has_text="Old news").locator("input[type=checkbox]").check()
    rows(page).filter(has_text="Older news").locator("input[type=checkbox]").check()
    page.get_by_role("toolbar", name="Selected messages").get_by_role(
        "button", name="Delete"
    ).click()
    expect(rows(page)).to_have_count(1)
    page.get_by_role("treeitem", name="Trash").click()
    expect(rows(page)).to_have_count(2)
    assert subjects_over_imap(node, ADDRESS, "Trash") == []

    context.set_offline(False)
    wait_for_imap(node, "Trash", ["Old news", "Older news"])
    assert subjects_over_imap(node, ADDRESS, "INBOX") == ["Keep me"]
