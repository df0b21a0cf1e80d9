"""Scheduling between local users through the calendar service (RFC 6638 §3.2), on both
backends: what the DAV front end does after a PUT or DELETE, without HTTP."""

from __future__ import annotations

import pytest

from hirondelle.errors import Refused
from hirondelle.groupware import itip
from hirondelle.groupware.service import DEFAULT_CALENDAR, SCHEDULE_INBOX
from hirondelle.services import Services
from hirondelle.store.directory import Account

from .test_itip import event

ALICE = "alice@example.test"
BOB = "bob@example.test"
NOBODY = "nobody@example.test"


async def accounts(services: Services) -> tuple[Account, Account]:
    await services.accounts.add_domain("example.test")
    alice = await services.accounts.add_account(ALICE, password=None)
    bob = await services.accounts.add_account(BOB, password=None)
    return alice, bob


async def read(services: Services, account: Account, collection: str, name: str) -> str | None:
    found = await services.groupware.collection(account.id, collection)
    assert found is not None
    resource = await services.groupware.get(found, name)
    return resource.data if resource is not None else None


async def put(services: Services, account: Account, name: str, data: bytes) -> None:
    calendar = await services.groupware.collection(account.id, DEFAULT_CALENDAR)
    assert calendar is not None
    await services.groupware.put(account, calendar, name, data)


def answered(text: str, address: str, partstat: str) -> str:
    """``text`` with ``address``'s PARTSTAT set, as a client does when the user answers."""
    calendar = itip.parse(text)
    for component in itip.scheduling_components(calendar):
        line = itip.find_attendee(component, address)
        if line is not None:
            line.params["PARTSTAT"] = partstat
    return calendar.to_ical().decode()


def statuses(text: str, address: str) -> tuple[str, str | None]:
    component = itip.scheduling_components(itip.parse(text))[0]
    line = itip.find_attendee(component, address)
    assert line is not None
    return itip.partstat(line), line.params.get("SCHEDULE-STATUS")


async def test_invite_accept_update_cancel(services: Services) -> None:
    alice, bob = await accounts(services)
    invitation = event(attendees={BOB: "NEEDS-ACTION", NOBODY: "NEEDS-ACTION"})
    await put(services, alice, "meeting.ics", invitation.to_ical())

    # Bob has it in his calendar (NEEDS-ACTION) and in his schedule inbox (METHOD).
    bob_copy = await read(services, bob, DEFAULT_CALENDAR, "meeting-1.ics")
    assert bob_copy is not None
    assert statuses(bob_copy, BOB) == ("NEEDS-ACTION", None)
    inbox = await read(services, bob, SCHEDULE_INBOX, "meeting-1.ics")
    assert inbox is not None and "METHOD:REQUEST" in inbox
    # Alice's copy says where it went: delivered to Bob, no such user for nobody@.
    organizer_copy = await read(services, alice, DEFAULT_CALENDAR, "meeting.ics")
    assert organizer_copy is not None
    assert statuses(organizer_copy, BOB) == ("NEEDS-ACTION", "1.2")
    assert statuses(organizer_copy, NOBODY) == ("NEEDS-ACTION", "3.7")

    # Bob accepts: Alice's copy says so.
    accepted = answered(bob_copy, BOB, "ACCEPTED")
    await put(services, bob, "meeting-1.ics", accepted.encode())
    organizer_copy = await read(services, alice, DEFAULT_CALENDAR, "meeting.ics")
    assert organizer_copy is not None
    assert statuses(organizer_copy, BOB) == ("ACCEPTED", "1.2")
    bob_copy = await read(services, bob, DEFAULT_CALENDAR, "meeting-1.ics")
    assert bob_copy is not None and "SCHEDULE-STATUS=1.2" in bob_copy

    # Alice renames it: Bob's copy follows and keeps his answer.
    renamed = organizer_copy.replace("SUMMARY:Réunion budget", "SUMMARY:Budget 2027")
    await put(services, alice, "meeting.ics", renamed.encode())
    bob_copy = await read(services, bob, DEFAULT_CALENDAR, "meeting-1.ics")
    assert bob_copy is not None and "Budget 2027" in bob_copy
    assert statuses(bob_copy, BOB)[0] == "ACCEPTED"

    # Alice deletes it: Bob's copy is cancelled.
    calendar = await services.groupware.collection(alice.id, DEFAULT_CALENDAR)
    assert calendar is not None
    await services.groupware.delete(alice, calendar, "meeting.ics")
    bob_copy = await read(services, bob, DEFAULT_CALENDAR, "meeting-1.ics")
    assert bob_copy is not None and "STATUS:CANCELLED" in bob_copy
    inbox = await read(services, bob, SCHEDULE_INBOX, "meeting-1.ics")
    assert inbox is not None and "METHOD:CANCEL" in inbox


async def test_attendee_delete_declines(services: Services) -> None:
    alice, bob = await accounts(services)
    await put(services, alice, "meeting.ics", event(attendees={BOB: "NEEDS-ACTION"}).to_ical())
    calendar = await services.groupware.collection(bob.id, DEFAULT_CALENDAR)
    assert calendar is not None
    await services.groupware.delete(bob, calendar, "meeting-1.ics")
    organizer_copy = await read(services, alice, DEFAULT_CALENDAR, "meeting.ics")
    assert organizer_copy is not None
    assert statuses(organizer_copy, BOB)[0] == "DECLINED"


FREEBUSY_REQUEST = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
METHOD:REQUEST\r
BEGIN:VFREEBUSY\r
UID:fb-1\r
DTSTAMP:20261122T100000Z\r
DTSTART:20261201T000000Z\r
DTEND:20261202T000000Z\r
ORGANIZER:mailto:{organizer}\r
ATTENDEE:mailto:{bob}\r
ATTENDEE:mailto:{nobody}\r
ATTENDEE:mailto:someone@remote.test\r
END:VFREEBUSY\r
END:VCALENDAR\r
"""


async def test_free_busy_of_local_users(services: Services) -> None:
    alice, bob = await accounts(services)
    await put(services, alice, "meeting.ics", event(attendees={BOB: "NEEDS-ACTION"}).to_ical())
    request = itip.parse(FREEBUSY_REQUEST.format(organizer=ALICE, bob=BOB, nobody=NOBODY))
    answers = await services.scheduling.free_busy(alice, request)
    assert [(a.recipient, str(a.status)) for a in answers] == [
        (f"mailto:{BOB}", "2.0"),
        (f"mailto:{NOBODY}", "3.7"),
        ("mailto:someone@remote.test", "5.3"),
    ]
    reply = answers[0].calendar
    assert reply is not None
    text = reply.to_ical().decode()
    assert "METHOD:REPLY" in text
    # 14:00-15:00 Paris time is 13:00-14:00 UTC.
    periods = [line for line in text.splitlines() if line.startswith("FREEBUSY")]
    assert len(periods) == 1
    assert "FBTYPE=BUSY" in periods[0]
    assert periods[0].endswith(":20261201T130000Z/20261201T140000Z")
    # Bob may not ask in Alice's name.
    with pytest.raises(Refused, match="organizer-allowed"):
        await services.scheduling.free_busy(bob, request)


async def test_another_organizer_cannot_take_over_an_event_by_its_uid(services: Services) -> None:
    alice, bob = await accounts(services)
    await put(services, alice, "mine.ics", event(attendees={BOB: "NEEDS-ACTION"}).to_ical())
    # Bob "organizes" an event with the UID of Alice's and invites her.
    hijack = itip.parse(
        event(attendees={}, summary="Hijacked")
        .to_ical()
        .decode()
        .replace(f"ORGANIZER;CN=Alice:mailto:{ALICE}", f"ORGANIZER:mailto:{BOB}")
        .replace(f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}", f"ATTENDEE:mailto:{ALICE}")
    )
    bob_calendar = await services.groupware.collection(bob.id, DEFAULT_CALENDAR)
    assert bob_calendar is not None
    existing = await services.groupware.get(bob_calendar, "meeting-1.ics")
    assert existing is not None
    await services.groupware.delete(bob, bob_calendar, "meeting-1.ics")  # Bob declines
    before = await read(services, alice, DEFAULT_CALENDAR, "mine.ics")
    assert before is not None and "PARTSTAT=DECLINED" in before
    await put(services, bob, "hijack.ics", hijack.to_ical())
    assert await read(services, alice, DEFAULT_CALENDAR, "mine.ics") == before


async def test_a_personal_event_with_an_organizer_is_stored_as_sent(services: Services) -> None:
    alice, _ = await accounts(services)
    text = "\r\n".join(line for line in event().to_ical().decode().split("\r\n") if BOB not in line)
    assert "ORGANIZER" in text and BOB not in text
    await put(services, alice, "mine.ics", text.encode())
    changed = text.replace("SUMMARY:Réunion budget", "SUMMARY:Dentiste")
    await put(services, alice, "mine.ics", changed.encode())
    # No SEQUENCE raised, no rewrite: the stored text is the client's.
    assert await read(services, alice, DEFAULT_CALENDAR, "mine.ics") == changed
