"""The groupware service and store on both backends (what JMAP will call): ids are per
account, the journal kinds and containers are those dav-coord.md promises, and an
initial sync page never splits one modseq."""

from __future__ import annotations

from hirondelle.services import Services
from hirondelle.store import journal
from tests.dav.core_helpers import card, event


async def _account(services: Services, address: str):  # type: ignore[no-untyped-def]
    domain = address.split("@", 1)[1]
    if domain not in [d.name for d, _ in await services.accounts.list_domains()]:
        await services.accounts.add_domain(domain)
    return await services.accounts.add_account(address, password="correct horse battery")


async def test_ids_belong_to_their_account(services: Services) -> None:
    alice = await _account(services, "alice@example.test")
    bob = await _account(services, "bob@example.test")
    groupware = services.groupware
    calendar = await groupware.collection(alice.id, "Calendar")
    assert calendar is not None
    written = await groupware.put(alice, calendar, "a.ics", event("a").encode())
    assert [r.info.uid for r in await groupware.by_ids(alice.id, [written.info.id])] == ["a"]
    assert await groupware.by_ids(bob.id, [written.info.id]) == []


async def test_journal_kinds_and_containers(services: Services) -> None:
    alice = await _account(services, "alice@example.test")
    groupware = services.groupware
    calendar = await groupware.collection(alice.id, "Calendar")
    book = await groupware.collection(alice.id, "Contacts")
    assert calendar is not None and book is not None
    since = alice.modseq
    event_info = (await groupware.put(alice, calendar, "e.ics", event("e").encode())).info
    card_info = (await groupware.put(alice, book, "c.vcf", card("c").encode())).info

    def read(conn):  # type: ignore[no-untyped-def]
        return (
            journal.changes_since(
                conn, alice.id, "CalendarObject", since, container_id=calendar.id
            ),
            journal.changes_since(conn, alice.id, "ContactCard", since, container_id=book.id),
            journal.changes_since(conn, alice.id, "Calendar", since),
        )

    events, cards, calendars = await services.database.read(read)
    assert events.created == [event_info.id]
    assert cards.created == [card_info.id]
    # The default collections were made after ``since`` too.
    assert calendar.id in calendars.created
    refreshed = await groupware.collection(alice.id, "Calendar")
    assert refreshed is not None and refreshed.modseq == event_info.modseq


async def test_snapshot_pages_at_modseq_boundaries(services: Services) -> None:
    alice = await _account(services, "alice@example.test")
    groupware = services.groupware
    calendar = await groupware.collection(alice.id, "Calendar")
    assert calendar is not None
    for i in range(5):
        await groupware.put(alice, calendar, f"{i}.ics", event(f"u{i}").encode())
    infos, modseq, truncated = await groupware.snapshot(calendar, limit=2)
    assert truncated and [i.name for i in infos] == ["0.ics", "1.ics"]
    rest = await groupware.changes(calendar, modseq)
    assert sorted(i.name for i in rest.changed) == ["2.ics", "3.ics", "4.ics"]
    infos, _modseq, truncated = await groupware.snapshot(calendar)
    assert not truncated and len(infos) == 5
