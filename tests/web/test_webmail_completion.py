"""Address completion in the webmail's composer: a contact written over CardDAV and a
colleague of the domain directory both complete (ARIA combobox, keyboard and mouse), a
contact added later arrives through /changes, and completion keeps working offline from
the local copy (real Chromium, real node, both backends)."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.jmap.conftest import ADDRESS, JmapNode, basic, message
from tests.web.test_webmail_e2e import (
    browser,
    certificate,
    context,
    jmap_settings,
    node,
    sign_in,
    wait_until,
)

__all__ = ["browser", "certificate", "context", "jmap_settings", "node"]  # fixtures


def vcard(uid: str, given: str, family: str, email: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:3.0",
            f"UID:{uid}",
            f"FN:{given} {family}",
            f"N:{family};{given};;;",
            f"EMAIL;TYPE=work:{email}",
            "END:VCARD",
            "",
        ]
    )


def put_contact(node: JmapNode, name: str, body: str) -> None:
    """A contact written by a CardDAV client (httpx PUT of a vCard)."""
    with httpx.Client(
        base_url=node.base_url, headers={"Authorization": basic(ADDRESS)}, timeout=30
    ) as http:
        response = http.put(
            f"/dav/{ADDRESS}/Contacts/{name}.vcf",
            content=body.encode(),
            headers={"Content-Type": "text/vcard; charset=utf-8"},
        )
    assert response.status_code == 201, response.text


def open_composer(page: Page) -> Locator:
    page.get_by_role("button", name="Write").click()
    return page.get_by_role("dialog", name="New message")


# Whether the offline copy of contacts and directory holds this address.
PEOPLE_CACHED = """async (address) => {
    const [info] = (await indexedDB.databases()).filter(d => d.name.endsWith('-people'));
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
    const entries = [...await all('ContactCard'), ...await all('Principal')];
    db.close();
    return entries.some(e => e.people.some(p => p.email === address));
}"""


def test_contacts_and_directory_complete_online_and_offline(
    node: JmapNode, context: BrowserContext
) -> None:
    node.add_account("carol@example.test", display_name="Carol Colleague")
    put_contact(node, "jeanne", vcard("card-jeanne", "Jeanne", "Dupré", "jeanne@example.org"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, node)
    page.get_by_role("checkbox", name="Use this computer offline").check()
    expect(page.get_by_role("checkbox", name="Use this computer offline")).to_be_checked()
    expect(page.get_by_role("status").filter(has_text="Online")).to_be_visible()
    wait_until(page, PEOPLE_CACHED, "carol@example.test")
    wait_until(page, PEOPLE_CACHED, "jeanne@example.org")
    assert not page.evaluate(PEOPLE_CACHED, "marc@example.org")

    composer = open_composer(page)
    to = composer.get_by_role("combobox", name="To", exact=True)
    to.press_sequentially("dupr")
    suggestions = composer.get_by_role("listbox", name="Address suggestions")
    expect(to).to_have_attribute("aria-expanded", "true")
    expect(suggestions.get_by_role("option")).to_have_count(1)
    option = suggestions.get_by_role("option").first
    expect(option).to_contain_text("Jeanne Dupré <jeanne@example.org>")
    expect(option).to_contain_text("contact")
    expect(option).to_have_attribute("aria-selected", "true")
    to.press("Enter")
    expect(to).to_have_value("Jeanne Dupré <jeanne@example.org>, ")
    expect(to).to_have_attribute("aria-expanded", "false")

    to.press_sequentially("caro")
    colleague = suggestions.get_by_role("option").filter(has_text="carol@example.test")
    expect(colleague).to_contain_text("Carol Colleague")
    expect(colleague).to_contain_text("directory")
    colleague.click()
    expect(to).to_have_value(
        "Jeanne Dupré <jeanne@example.org>, Carol Colleague <carol@example.test>, "
    )
    # Escape closes the suggestions first, the composer only the second time.
    cc = composer.get_by_role("combobox", name="Cc", exact=True)
    cc.press_sequentially("jea")
    expect(cc).to_have_attribute("aria-expanded", "true")
    cc.press("Escape")
    expect(cc).to_have_attribute("aria-expanded", "false")
    expect(composer).to_be_visible()

    # A contact added elsewhere afterwards arrives through ContactCard/changes at the next
    # synchronisation (here started by the push of a new message).
    put_contact(node, "marc", vcard("card-marc", "Marc", "Lavoine", "marc@example.org"))
    node.deliver(message("Nudge"))
    expect(page.get_by_role("option").filter(has_text="Nudge")).to_be_visible()
    wait_until(page, PEOPLE_CACHED, "marc@example.org")

    context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    bcc = composer.get_by_role("combobox", name="Bcc")
    bcc.press_sequentially("lavo")
    expect(suggestions.get_by_role("option").filter(has_text="Marc Lavoine")).to_be_visible()
    bcc.press("ArrowDown")
    bcc.fill("")
    bcc.press_sequentially("colleague")
    expect(composer.get_by_role("option").filter(has_text="carol@example.test")).to_be_visible()
    bcc.press("Enter")
    expect(bcc).to_have_value("Carol Colleague <carol@example.test>, ")
    assert errors == []
