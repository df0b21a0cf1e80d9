"""JMAP Calendars and CalDAV on the same data (one node, both backends): an event made
over JMAP is in a CalDAV sync-collection done with the real ``caldav`` library, an
event saved with ``caldav`` is in CalendarEvent/changes, iCalendar properties JMAP does
not map survive a JMAP update, and ``sendSchedulingMessages`` drives RFC 6638 / iMIP
scheduling (local attendee's calendar and schedule inbox, an iMIP REQUEST queued for a
remote attendee, the replies coming back)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time
from typing import Any

from caldav.davclient import DAVClient

from hirondelle.store import queue
from tests.jmap.conftest import PASSWORD, JmapClient, JmapNode
from tests.jmap.test_calendars import call, create_event, get_event

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@remote.example"


def caldav_client(node: JmapNode, address: str = ALICE) -> Any:
    return DAVClient(url=node.base_url + "/", username=address, password=PASSWORD, timeout=30)


def default_dav_calendar(node: JmapNode, address: str = ALICE) -> Any:
    principal = caldav_client(node, address).principal()
    return next(c for c in principal.calendars() if c.url.path.rstrip("/").endswith("/Calendar"))


def test_jmap_event_appears_in_caldav_sync_collection(node: JmapNode, client: JmapClient) -> None:
    calendar = default_dav_calendar(node)
    initial = calendar.get_objects_by_sync_token(load_objects=True, disable_fallback=True)
    token = initial.sync_token
    assert token and not str(token).startswith("fake-")
    assert list(initial) == []

    event_id, _ = create_event(
        client,
        {
            "uid": "from-jmap@example.test",
            "title": "Créé en JMAP",
            "start": "2026-12-03T15:00:00",
            "timeZone": "Europe/Paris",
            "duration": "PT45M",
            "recurrenceRules": [{"frequency": "daily", "count": 3}],
        },
    )
    changed = calendar.get_objects_by_sync_token(token, load_objects=True, disable_fallback=True)
    (found,) = list(changed)
    component = found.icalendar_component
    assert str(component["UID"]) == "from-jmap@example.test"
    assert str(component["SUMMARY"]) == "Créé en JMAP"
    assert component["DTSTART"].params["TZID"] == "Europe/Paris"
    assert str(component["RRULE"].to_ical().decode()) == "FREQ=DAILY;COUNT=3"
    # CalDAV time-range search sees the JMAP event's third instance, not a fourth.
    hits = calendar.search(
        start=dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
        end=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
        event=True,
    )
    assert [str(h.icalendar_component["UID"]) for h in hits] == ["from-jmap@example.test"]
    assert (
        calendar.search(
            start=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
            end=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
            event=True,
        )
        == []
    )

    # JMAP destroy: CalDAV sync reports the removal.
    token2 = changed.sync_token
    call(client, "CalendarEvent/set", {"destroy": [event_id]})
    after = calendar.get_objects_by_sync_token(token2, load_objects=False, disable_fallback=True)
    assert len(list(after)) == 1


CALDAV_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//caldav//EN\r\n"
    "BEGIN:VEVENT\r\nUID:from-caldav@example.test\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20261204T090000Z\r\nDTEND:20261204T100000Z\r\n"
    "SUMMARY:Saved with caldav\r\n"
    "X-HIRONDELLE-TEST;X-PARAM=kept:unmapped value\r\n"
    "ATTACH:https://example.test/agenda.pdf\r\n"
    "BEGIN:VALARM\r\nUID:alarm-1\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\n"
    "TRIGGER:-PT10M\r\nX-ALARM-EXTRA:yes\r\nEND:VALARM\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_caldav_save_is_seen_by_jmap_changes_and_unmapped_properties_survive(
    node: JmapNode, client: JmapClient
) -> None:
    calendar = default_dav_calendar(node)
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    calendar.save_event(CALDAV_EVENT)
    changes = call(client, "CalendarEvent/changes", {"sinceState": state})
    (event_id,) = changes["created"]
    event = get_event(client, event_id)
    assert event["uid"] == "from-caldav@example.test"
    assert event["title"] == "Saved with caldav"
    assert event["start"] == "2026-12-04T09:00:00" and event["timeZone"] == "Etc/UTC"
    assert event["duration"] == "PT1H"
    assert event["alerts"] == {
        "alarm-1": {
            "@type": "Alert",
            "trigger": {"@type": "OffsetTrigger", "offset": "-PT10M", "relativeTo": "start"},
            "action": "display",
        }
    }

    call(
        client,
        "CalendarEvent/set",
        {
            "update": {
                event_id: {"title": "Renamed in JMAP", "alerts/alarm-1/trigger/offset": "-PT5M"}
            }
        },
    )
    stored = calendar.event_by_uid("from-caldav@example.test")
    component = stored.icalendar_component
    assert str(component["SUMMARY"]) == "Renamed in JMAP"
    assert str(component["X-HIRONDELLE-TEST"]) == "unmapped value"
    assert component["X-HIRONDELLE-TEST"].params["X-PARAM"] == "kept"
    assert str(component["ATTACH"]) == "https://example.test/agenda.pdf"
    (alarm,) = [s for s in component.subcomponents if s.name == "VALARM"]
    assert str(alarm["X-ALARM-EXTRA"]) == "yes"
    assert alarm["TRIGGER"].to_ical() == b"-PT5M"

    # CalDAV update -> CalendarEvent/changes "updated".
    state2 = call(client, "CalendarEvent/get", {"ids": []})["state"]
    component["SUMMARY"] = "Renamed in CalDAV"
    stored.save()
    assert call(client, "CalendarEvent/changes", {"sinceState": state2})["updated"] == [event_id]
    assert get_event(client, event_id)["title"] == "Renamed in CalDAV"
    # CalDAV delete -> "destroyed".
    state3 = call(client, "CalendarEvent/get", {"ids": []})["state"]
    stored.delete()
    assert call(client, "CalendarEvent/changes", {"sinceState": state3})["destroyed"] == [event_id]


def _participant(event: dict[str, Any], address: str) -> tuple[str, dict[str, Any]]:
    for key, person in (event["participants"] or {}).items():
        if person.get("email") == address:
            return key, person
    raise AssertionError(f"{address} is not a participant of {event}")


def _queued(node: JmapNode) -> list[tuple[str, bytes]]:
    async def read() -> list[tuple[str, bytes]]:
        recipients = await node.services.database.read(queue.list_recipients)
        return [(r.address, await node.services.blobs.get(r.blob_hash)) for r in recipients]

    return node.run(read())


def _calendar_part(raw: bytes) -> tuple[str, str]:
    """(method parameter, text) of the text/calendar part of an iMIP message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return str(part.get_param("method")), str(part.get_content())
    raise AssertionError("no text/calendar part")


def test_send_scheduling_messages_local_and_remote_attendees(
    node: JmapNode, client: JmapClient
) -> None:
    bob = node.add_account(BOB)
    bob_client = node.client(bob, address=BOB)
    event_id, _ = create_event(
        client,
        {
            "uid": "invite@example.test",
            "title": "Comité / Committee",
            "start": "2026-12-10T14:00:00",
            "timeZone": "Europe/Paris",
            "duration": "PT1H",
            "participants": {
                "alice": {
                    "name": "Alice",
                    "email": ALICE,
                    "sendTo": {"imip": f"mailto:{ALICE}"},
                    "roles": {"owner": True, "attendee": True, "chair": True},
                    "participationStatus": "accepted",
                },
                "bob": {
                    "name": "Bob",
                    "sendTo": {"imip": f"mailto:{BOB}"},
                    "roles": {"attendee": True},
                    "participationStatus": "needs-action",
                    "expectReply": True,
                },
                "carol": {
                    "name": "Carol",
                    "sendTo": {"imip": f"mailto:{CAROL}"},
                    "roles": {"optional": True},
                    "expectReply": True,
                },
            },
        },
        send=True,
    )
    # The remote attendee: an iMIP REQUEST in the outbound queue.
    queued = [(to, raw) for to, raw in _queued(node) if to == CAROL]
    assert len(queued) == 1
    method_param, text = _calendar_part(queued[0][1])
    assert method_param == "REQUEST"
    assert "METHOD:REQUEST" in text and "UID:invite@example.test" in text

    # The local attendee: the event in his calendar (JMAP and CalDAV) and the REQUEST in
    # his schedule inbox.
    bob_ids = call(bob_client, "CalendarEvent/query", {"filter": {"uid": "invite@example.test"}})[
        "ids"
    ]
    assert len(bob_ids) == 1
    bob_event = get_event(bob_client, bob_ids[0])
    assert bob_event["isOrigin"] is False
    bob_key, bob_person = _participant(bob_event, BOB)
    assert bob_person["participationStatus"] == "needs-action"
    principal = caldav_client(node, BOB).principal()
    inbox = [
        i
        for i in principal.schedule_inbox().get_items()
        if "invite@example.test" in (i.load().data or "")
    ]
    assert len(inbox) == 1 and inbox[0].is_invite_request()

    # Bob accepts over JMAP: the organizer's copy says so.
    accepted = call(
        bob_client,
        "CalendarEvent/set",
        {
            "update": {bob_ids[0]: {f"participants/{bob_key}/participationStatus": "accepted"}},
            "sendSchedulingMessages": True,
        },
    )
    assert accepted["updated"] == {bob_ids[0]: None}
    alice_event = get_event(client, event_id)
    assert _participant(alice_event, BOB)[1]["participationStatus"] == "accepted"

    # Carol's iMIP REPLY comes back by mail: the organizer's copy is updated, and the
    # message is in Alice's INBOX over IMAP.
    carol_key = _participant(alice_event, CAROL)[0]
    reply = (
        f"From: Carol <{CAROL}>\r\nTo: {ALICE}\r\nSubject: Accepted: Committee\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@remote.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n"
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//remote//EN\r\nMETHOD:REPLY\r\n"
        "BEGIN:VEVENT\r\nUID:invite@example.test\r\nDTSTAMP:20261122T100000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20261210T140000\r\nSEQUENCE:0\r\n"
        f"ORGANIZER:mailto:{ALICE}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{CAROL}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    node.deliver(reply)
    alice_event = get_event(client, event_id)
    assert alice_event["participants"][carol_key]["participationStatus"] == "accepted"
    imap = node.imap()
    try:
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX")
        status, found = imap.search(None, "SUBJECT", '"Accepted: Committee"')
        assert status == "OK" and found[0].split(), found
    finally:
        imap.logout()

    # The organizer cancels: a CANCEL for Carol, Bob's copy cancelled or gone.
    call(client, "CalendarEvent/set", {"destroy": [event_id], "sendSchedulingMessages": True})
    cancels = [_calendar_part(raw)[0] for to, raw in _queued(node) if to == CAROL]
    assert "CANCEL" in cancels, cancels
    left = call(bob_client, "CalendarEvent/get", {"ids": bob_ids})
    assert left["notFound"] == bob_ids or left["list"][0]["status"] == "cancelled"


def test_without_send_scheduling_messages_nothing_is_sent(
    node: JmapNode, client: JmapClient
) -> None:
    bob_client = node.client(node.add_account(BOB), address=BOB)
    create_event(
        client,
        {
            "uid": "quiet@example.test",
            "title": "Draft",
            "start": "2026-12-11T14:00:00",
            "timeZone": "Etc/UTC",
            "participants": {
                "a": {"email": ALICE, "roles": {"owner": True}},
                "c": {"email": CAROL, "roles": {"attendee": True}},
                "b": {"email": BOB, "roles": {"attendee": True}},
            },
        },
    )
    assert _queued(node) == []
    # The local attendee got nothing either (the organizer did not ask to schedule).
    assert call(bob_client, "CalendarEvent/query", {})["ids"] == []


def test_moving_an_event_to_another_calendar_keeps_its_id(
    node: JmapNode, client: JmapClient
) -> None:
    principal = caldav_client(node).principal()
    work = principal.make_calendar(name="Travail", cal_id="travail")
    home = default_dav_calendar(node)
    home_token = home.get_objects_by_sync_token(disable_fallback=True).sync_token
    work_token = work.get_objects_by_sync_token(disable_fallback=True).sync_token
    (work_id,) = [
        c["id"]
        for c in call(client, "Calendar/get", {"ids": None})["list"]
        if c["name"] == "Travail"
    ]
    event_id, _ = create_event(
        client,
        {"uid": "mover@example.test", "title": "Move me", "start": "2026-12-12T10:00:00"},
    )
    home_token = home.get_objects_by_sync_token(home_token, disable_fallback=True).sync_token
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    moved = call(
        client,
        "CalendarEvent/set",
        {"update": {event_id: {"calendarIds": {work_id: True}, "title": "Moved"}}},
    )
    assert moved["updated"] == {event_id: None}
    event = get_event(client, event_id)
    assert event["calendarIds"] == {work_id: True} and event["title"] == "Moved"
    changes = call(client, "CalendarEvent/changes", {"sinceState": state})
    assert changes["updated"] == [event_id] and changes["created"] == []
    assert changes["destroyed"] == []
    # CalDAV: gone from the default calendar, in the other one, still findable by UID.
    assert len(list(home.get_objects_by_sync_token(home_token, disable_fallback=True))) == 1
    assert [
        str(o.icalendar_component["SUMMARY"])
        for o in work.get_objects_by_sync_token(
            work_token, load_objects=True, disable_fallback=True
        )
    ] == ["Moved"]
    assert str(work.event_by_uid("mover@example.test").icalendar_component["SUMMARY"]) == "Moved"
    # Found by inCalendars under its new calendar only.
    assert call(client, "CalendarEvent/query", {"filter": {"inCalendars": [work_id]}})["ids"] == [
        event_id
    ]
    # A second event with that UID cannot move into the same calendar.
    other_id, _ = create_event(
        client,
        {"uid": "mover@example.test", "title": "Twin", "start": "2026-12-13T10:00:00"},
    )
    refused = call(
        client, "CalendarEvent/set", {"update": {other_id: {"calendarIds": {work_id: True}}}}
    )
    assert refused["notUpdated"][other_id]["type"] == "alreadyExists"
    assert refused["notUpdated"][other_id]["existingId"] == event_id


def test_caldav_change_is_pushed_as_calendar_event(node: JmapNode, client: JmapClient) -> None:
    from tests.jmap.test_push import events

    calendar = default_dav_calendar(node)
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    with events(client, "types=CalendarEvent&closeafter=no&ping=1") as stream:
        started = time.monotonic()
        calendar.save_event(CALDAV_EVENT)
        event = stream.next(timeout=2.0)
        assert event is not None and event[0] == "state"
        assert time.monotonic() - started < 1.5
        changed = event[1]["changed"][client.account_id]
        assert list(changed) == ["CalendarEvent"]
        assert int(changed["CalendarEvent"]) > int(state)
    assert len(call(client, "CalendarEvent/changes", {"sinceState": state})["created"]) == 1


def test_an_object_of_instances_only_is_read_but_not_rewritten(
    node: JmapNode, client: JmapClient
) -> None:
    """An invitation to one occurrence of another's series has no master: JMAP shows it
    and refuses to write it back as a master (it would stop being an occurrence)."""
    calendar = default_dav_calendar(node)
    calendar.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:series-x@example.net\r\nDTSTAMP:20260101T000000Z\r\n"
        "RECURRENCE-ID:20260105T090000Z\r\nDTSTART:20260105T100000Z\r\n"
        "DTEND:20260105T110000Z\r\nSUMMARY:One occurrence\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (event_id,) = call(client, "CalendarEvent/query", {"filter": {"uid": "series-x@example.net"}})[
        "ids"
    ]
    assert get_event(client, event_id)["title"] == "One occurrence"
    refused = call(client, "CalendarEvent/set", {"update": {event_id: {"title": "x"}}})
    assert refused["notUpdated"][event_id]["type"] == "forbidden"
    stored = calendar.event_by_uid("series-x@example.net")
    assert "RECURRENCE-ID" in stored.icalendar_component
