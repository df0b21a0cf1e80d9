"""Scheduling between two local users over CalDAV (RFC 6638), with the ``caldav`` library
and httpx against a running node: invite, accept, decline, update, cancel, free-busy
through the outbox, and the outbox's preconditions. Both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from hirondelle.groupware import itip
from tests.dav.interop_helpers import ALICE, BOB, CALDAV, DAV, DavNode, dav_node

__all__ = ["dav_node"]  # the fixture, imported for pytest

CAROL = "carol@example.test"
PARIS = dt.timezone(dt.timedelta(hours=1))

MEETING = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:sched-meeting-1\r
DTSTAMP:20261122T100000Z\r
DTSTART:20261201T130000Z\r
DTEND:20261201T140000Z\r
SUMMARY:Revue de projet\r
END:VEVENT\r
END:VCALENDAR\r
"""


_open: dict[tuple[int, str], Any] = {}


@pytest.fixture(autouse=True)
def close_clients(dav_node: DavNode) -> Iterator[None]:
    """caldav clients keep their connection open; the node's shutdown would wait for them
    (this fixture needs the node, so it is torn down before it)."""
    yield
    for opened in _open.values():
        opened.close()
    _open.clear()


def client(dav_node: DavNode, address: str = ALICE) -> Any:
    """One ``caldav`` client per user and node, closed after the test."""
    key = (id(dav_node), address)
    if key not in _open:
        _open[key] = dav_node.caldav(address)
    return _open[key]


def calendar_of(client: Any) -> Any:
    principal = client.principal()
    return next(c for c in principal.calendars() if c.url.path.rstrip("/").endswith("Calendar"))


def attendee_params(data: str, address: str) -> dict[str, str]:
    component = itip.scheduling_components(itip.parse(data))[0]
    line = itip.find_attendee(component, address)
    assert line is not None, f"{address} is not an attendee"
    return {str(k): str(v) for k, v in line.params.items()}


def bob_copy(dav_node: DavNode) -> Any:
    return calendar_of(client(dav_node, BOB)).event_by_uid("sched-meeting-1")


def alice_copy(dav_node: DavNode) -> Any:
    return calendar_of(client(dav_node, ALICE)).event_by_uid("sched-meeting-1")


def invite(dav_node: DavNode, *attendees: str) -> Any:
    for address in attendees:
        dav_node.add_account(address)
    calendar = calendar_of(client(dav_node, ALICE))
    return calendar.save_with_invites(
        MEETING, [f"mailto:{a}" for a in attendees], increase_seqno=False
    )


def answer(dav_node: DavNode, address: str, partstat: str) -> None:
    """What a calendar client does when the user answers: set their PARTSTAT, PUT."""
    event = calendar_of(client(dav_node, address)).event_by_uid("sched-meeting-1")
    component = event.icalendar_instance.walk("VEVENT")[0]
    line = itip.find_attendee(component, address)
    assert line is not None
    line.params["PARTSTAT"] = partstat
    event.save(increase_seqno=False)


def test_invitation_lands_in_the_attendees_inbox_and_calendar(dav_node: DavNode) -> None:
    invite(dav_node, BOB)
    copy = bob_copy(dav_node)
    assert attendee_params(copy.data, BOB)["PARTSTAT"] == "NEEDS-ACTION"
    inbox = client(dav_node, BOB).principal().schedule_inbox()
    items = list(inbox.get_items())
    assert len(items) == 1
    items[0].load()
    assert items[0].is_invite_request()
    # Alice's copy says the invitation was delivered (RFC 6638 §3.2.9).
    assert attendee_params(alice_copy(dav_node).data, BOB)["SCHEDULE-STATUS"] == "1.2"


@pytest.mark.parametrize("partstat", ["ACCEPTED", "DECLINED", "TENTATIVE"])
def test_the_attendees_answer_reaches_the_organizer(dav_node: DavNode, partstat: str) -> None:
    invite(dav_node, BOB, CAROL)
    answer(dav_node, BOB, partstat)
    organizer = alice_copy(dav_node).data
    assert attendee_params(organizer, BOB)["PARTSTAT"] == partstat
    assert attendee_params(organizer, CAROL)["PARTSTAT"] == "NEEDS-ACTION"
    # Alice's inbox has Bob's REPLY.
    inbox = client(dav_node, ALICE).principal().schedule_inbox()
    replies = [item for item in list(inbox.get_items()) if item.load().is_invite_reply()]
    assert len(replies) == 1


def test_updates_propagate_and_keep_the_answer_unless_the_time_moves(dav_node: DavNode) -> None:
    invite(dav_node, BOB)
    answer(dav_node, BOB, "ACCEPTED")

    event = alice_copy(dav_node)
    component = event.icalendar_instance.walk("VEVENT")[0]
    component["SUMMARY"] = "Revue de projet (salle 3)"
    event.save()
    copy = bob_copy(dav_node).data
    assert "salle 3" in copy
    assert attendee_params(copy, BOB)["PARTSTAT"] == "ACCEPTED"

    event = alice_copy(dav_node)
    component = event.icalendar_instance.walk("VEVENT")[0]
    component.pop("DTSTART")
    component.pop("DTEND")
    component.add("DTSTART", dt.datetime(2026, 12, 2, 13, tzinfo=dt.UTC))
    component.add("DTEND", dt.datetime(2026, 12, 2, 14, tzinfo=dt.UTC))
    event.save()
    copy = bob_copy(dav_node)
    assert copy.icalendar_component.decoded("DTSTART") == dt.datetime(
        2026, 12, 2, 13, tzinfo=dt.UTC
    )
    assert attendee_params(copy.data, BOB)["PARTSTAT"] == "NEEDS-ACTION"


def test_removing_an_attendee_and_deleting_the_event_cancel(dav_node: DavNode) -> None:
    invite(dav_node, BOB, CAROL)
    event = alice_copy(dav_node)
    component = event.icalendar_instance.walk("VEVENT")[0]
    kept = [a for a in itip.attendee_lines(component) if itip.address_of(a) != CAROL]
    component.pop("ATTENDEE")
    for line in kept:
        component.add("ATTENDEE", line)
    event.save()
    carol = calendar_of(client(dav_node, CAROL)).event_by_uid("sched-meeting-1")
    assert "STATUS:CANCELLED" in carol.data
    assert "STATUS:CANCELLED" not in bob_copy(dav_node).data

    alice_copy(dav_node).delete()
    assert "STATUS:CANCELLED" in bob_copy(dav_node).data
    inbox = client(dav_node, BOB).principal().schedule_inbox()
    [item] = list(inbox.get_items())
    assert "METHOD:CANCEL" in item.load().data


def test_free_busy_through_the_outbox(dav_node: DavNode) -> None:
    invite(dav_node, BOB)
    principal = client(dav_node, ALICE).principal()
    answers = principal.freebusy_request(
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        [f"mailto:{BOB}"],
    )
    assert answers["errors"] == {}
    text = answers[f"mailto:{BOB}"].data
    assert "METHOD:REPLY" in text
    assert "20261201T130000Z/20261201T140000Z" in text


OUTBOX_REQUEST = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VFREEBUSY\r\nUID:fb\r\nDTSTAMP:20261122T100000Z\r\n"
    "DTSTART:20261201T000000Z\r\nDTEND:20261202T000000Z\r\n"
    "ORGANIZER:mailto:{organizer}\r\nATTENDEE:mailto:{attendee}\r\n"
    "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
)


def outbox(address: str = ALICE) -> str:
    return f"/dav/{quote(address)}/Outbox/"


def precondition(body: bytes) -> str:
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{{DAV}}}error", body
    return next(child.tag for child in root if child.tag.startswith(f"{{{CALDAV}}}"))


def test_outbox_answers_per_recipient(dav_node: DavNode) -> None:
    dav_node.add_account(BOB)
    with dav_node.http() as client:
        response = client.post(
            outbox(),
            content=OUTBOX_REQUEST.format(organizer=ALICE, attendee="ghost@example.test"),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{{{CALDAV}}}schedule-response"
    status = root.findtext(f"{{{CALDAV}}}response/{{{CALDAV}}}request-status")
    assert status == "3.7;Invalid calendar user"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "element"),
    [
        (
            OUTBOX_REQUEST.format(organizer=BOB, attendee=ALICE),
            "text/calendar",
            403,
            "organizer-allowed",
        ),
        ("BEGIN:VCALENDAR\r\nbroken", "text/calendar", 400, "valid-calendar-data"),
        (MEETING, "text/calendar", 400, "valid-scheduling-message"),
        ("<x/>", "application/xml", 415, "supported-calendar-data"),
        ("A" * 300_000, "text/calendar", 413, "max-resource-size"),
    ],
)
def test_outbox_preconditions(
    dav_node: DavNode, body: str, content_type: str, status: int, element: str
) -> None:
    dav_node.add_account(BOB)
    with dav_node.http() as client:
        response = client.post(outbox(), content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert precondition(response.content) == f"{{{CALDAV}}}{element}"


def test_only_the_owner_may_post_to_an_outbox(dav_node: DavNode) -> None:
    dav_node.add_account(BOB)
    with dav_node.http(BOB) as client:
        response = client.post(
            outbox(ALICE),
            content=OUTBOX_REQUEST.format(organizer=ALICE, attendee=BOB),
            headers={"Content-Type": "text/calendar"},
        )
    assert response.status_code in (403, 404)


def test_an_unchanged_scheduling_object_is_stored_as_sent(dav_node: DavNode) -> None:
    """Only a real change of SCHEDULE-STATUS or SEQUENCE rewrites the organizer's object:
    otherwise the PUT's ETag stays the current one (RFC 4791 §5.3.4)."""
    invite(dav_node, BOB)
    url = f"/dav/{quote(ALICE)}/Calendar/"
    with dav_node.http() as http:
        listing = alice_copy(dav_node)
        path = listing.url.path
        first = http.get(path)
        assert first.status_code == 200 and "SCHEDULE-STATUS=1.2" in first.text
        # The same object as another client writes it (SUMMARY moved): no rewrite either.
        lines = first.text.split("\r\n")
        summary = next(line for line in lines if line.startswith("SUMMARY:"))
        lines.remove(summary)
        lines.insert(lines.index("END:VEVENT"), summary)
        body = "\r\n".join(lines)
        assert body != first.text
        again = http.put(
            path,
            content=body.encode(),
            headers={"Content-Type": "text/calendar", "If-Match": first.headers["ETag"]},
        )
        assert again.status_code == 204, again.text
        assert again.headers.get("ETag") is not None
        stored = http.get(path)
        assert stored.headers["ETag"] == again.headers["ETag"]
        assert stored.text == body
        assert path.startswith(url)
    # And Bob got nothing new: still the one invitation in his inbox.
    inbox = client(dav_node, BOB).principal().schedule_inbox()
    assert len(list(inbox.get_items())) == 1
