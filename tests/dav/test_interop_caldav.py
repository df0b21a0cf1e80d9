"""Black-box CalDAV with the ``caldav`` library (what Python users and many scripts use):
discovery from the bare root URL, calendars, recurring events with overrides and
EXDATEs, time-range search, sync tokens, todos and deletion. Each result the library
shows is also checked on the wire where the library could hide a server fault (it falls
back to client-side filtering and fake sync tokens when a server misbehaves, so those
fallbacks are turned off or checked for).

RFC 4791 (CalDAV), RFC 6578 (sync-collection), RFC 6764 (/.well-known), RFC 5397
(current-user-principal).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from caldav.collection import Calendar
from caldav.lib import error as caldav_error

from tests.dav.interop_helpers import (
    ALICE,
    BOB,
    CALDAV,
    DAV,
    PASSWORD,
    DavNode,
    dav_node,
    home,
    last_segment,
    parse_multistatus,
    propfind,
    report,
)

__all__ = ["dav_node"]

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC

VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)

# Every Monday 09:00 Paris from 2 March 2026, 10 times; 16 March not held (EXDATE);
# 23 March moved to 14:00 (an override, RFC 5545 §3.8.4.4).
WEEKLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//interop//EN\r\n"
    + VTIMEZONE
    + "BEGIN:VEVENT\r\nUID:weekly-standup\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20260302T090000\r\n"
    "DTEND;TZID=Europe/Paris:20260302T093000\r\n"
    "RRULE:FREQ=WEEKLY;COUNT=10\r\n"
    "EXDATE;TZID=Europe/Paris:20260316T090000\r\n"
    "SUMMARY:Point d'équipe / Stand-up\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:weekly-standup\r\nDTSTAMP:20260101T000000Z\r\n"
    "RECURRENCE-ID;TZID=Europe/Paris:20260323T090000\r\n"
    "DTSTART;TZID=Europe/Paris:20260323T140000\r\n"
    "DTEND;TZID=Europe/Paris:20260323T143000\r\n"
    "SUMMARY:Point d'équipe (déplacé)\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def single(uid: str, start: dt.datetime, summary: str, minutes: int = 60) -> str:
    end = start + dt.timedelta(minutes=minutes)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//interop//EN\r\n"
        + VTIMEZONE
        + f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Paris:{start:%Y%m%dT%H%M%S}\r\n"
        f"DTEND;TZID=Europe/Paris:{end:%Y%m%dT%H%M%S}\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def uids(objects: list[Any]) -> list[str]:
    return sorted(str(o.icalendar_component["UID"]) for o in objects)


def starts(objects: list[Any]) -> list[dt.datetime]:
    """DTSTART of each (expanded) occurrence, in UTC."""
    found = []
    for o in objects:
        for component in o.icalendar_instance.walk("VEVENT"):
            found.append(component.decoded("DTSTART").astimezone(UTC))
    return sorted(found)


def paris(day: int, hour: int, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=PARIS)


def test_discovery_from_the_root_url(dav_node: DavNode) -> None:
    """A client given only https://host:port/ and address+password finds the principal,
    the calendar home and the default calendar (created on first use)."""
    client = dav_node.caldav()
    principal = client.principal()
    assert principal.url.path.rstrip("/") in {
        f"/dav/principals/{ALICE}",
        f"/dav/principals/{ALICE.replace('@', '%40')}",
    }
    assert principal.calendar_home_set.url.path in {home(), f"/dav/{ALICE}/"}
    names = {c.get_display_name(): c for c in principal.calendars()}
    assert "Calendar" in {last_segment(c.url.path) for c in names.values()}, names
    assert f"mailto:{ALICE}" in [str(a) for a in principal.calendar_user_address_set()]
    # RFC 6764 §5: the well-known URI redirects to the context path.
    with dav_node.http() as http:
        for name in ("caldav", "carddav"):
            response = http.get(f"/.well-known/{name}", follow_redirects=False)
            assert response.status_code in {301, 302, 303, 307, 308}, response
            assert response.headers["location"].rstrip("/").endswith("/dav") or (
                "/dav/" in response.headers["location"]
            )


def test_calendars_are_created_listed_and_deleted(dav_node: DavNode) -> None:
    principal = dav_node.caldav().principal()
    work = principal.make_calendar(name="Travail", cal_id="travail")
    tasks = principal.make_calendar(
        name="Tâches", cal_id="taches", supported_calendar_component_set=["VTODO"]
    )
    listed = {last_segment(c.url.path): c.get_display_name() for c in principal.calendars()}
    assert listed["travail"] == "Travail"
    assert listed["taches"] == "Tâches"
    assert [str(c) for c in tasks.get_supported_components()] == ["VTODO"]
    # RFC 4791 §5.3.2.1: a VEVENT in a VTODO-only calendar is refused (403 with the
    # precondition, which the library reports as an authorization error).
    with pytest.raises((caldav_error.PutError, caldav_error.AuthorizationError)):
        tasks.save_event(single("misplaced", paris(2, 10), "Nope"))
    with dav_node.http() as http:
        refused = http.put(
            tasks.url.path + "misplaced.ics",
            content=single("misplaced", paris(2, 10), "Nope").encode(),
            headers={"Content-Type": "text/calendar"},
        )
        assert refused.status_code == 403, refused.text
        error = ElementTree.fromstring(refused.content)
        assert error.tag == f"{{{DAV}}}error"
        assert error.find(f"{{{CALDAV}}}supported-calendar-component") is not None
        assert http.get(tasks.url.path + "misplaced.ics").status_code == 404
    work.delete()
    listed_after = {last_segment(c.url.path) for c in principal.calendars()}
    assert "travail" not in listed_after
    assert "taches" in listed_after


def test_recurring_event_with_override_and_exdate_in_time_range_search(dav_node: DavNode) -> None:
    calendar = dav_node.caldav().principal().make_calendar(name="Équipe", cal_id="equipe")
    calendar.save_event(WEEKLY)
    calendar.save_event(single("dentist", paris(17, 11), "Dentiste"))
    calendar.save_event(single("april", paris(6, 11, month=4), "Avril"))
    calendar.save_event(single("february", paris(23, 11, month=2), "Février"))

    # The week of the EXDATE holds only the dentist: the standup of 16 March is gone.
    week = calendar.search(start=paris(16, 0), end=paris(21, 0), event=True)
    assert uids(week) == ["dentist"]
    # The morning of 23 March is empty: that occurrence moved to the afternoon.
    morning = calendar.search(start=paris(23, 8), end=paris(23, 12), event=True)
    assert uids(morning) == []
    afternoon = calendar.search(start=paris(23, 13), end=paris(23, 15), event=True)
    assert uids(afternoon) == ["weekly-standup"]
    # March: the series and the dentist, not February's or April's one-offs.
    march = calendar.search(start=paris(1, 0), end=paris(1, 0, month=4), event=True)
    assert uids(march) == ["dentist", "weekly-standup"]

    # Server-side expansion (RFC 4791 §9.6.5): one instance per occurrence, in UTC.
    expanded = calendar.search(
        start=paris(1, 0), end=paris(1, 0, month=4), event=True, expand=True, server_expand=True
    )
    standups = [o for o in expanded if str(o.icalendar_component["UID"]) == "weekly-standup"]
    assert starts(standups) == [
        paris(2, 9).astimezone(UTC),
        paris(9, 9).astimezone(UTC),
        paris(23, 14).astimezone(UTC),
        # 30 March: after the change to summer time, still 09:00 in Paris.
        paris(30, 9).astimezone(UTC),
    ]

    # On the wire: the server itself filters (the library could filter client-side).
    with dav_node.http() as http:
        response = report(
            http,
            calendar.url.path,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
            "<d:prop><d:getetag/></d:prop>"
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            '<c:time-range start="20260316T000000Z" end="20260321T000000Z"/>'
            "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>",
        )
    assert response.status_code == 207, response.text
    found = parse_multistatus(response.content)
    assert [last_segment(h) for h in found] == [last_segment(uids_href(calendar, "dentist"))]


def uids_href(calendar: Any, uid: str) -> str:
    return str(calendar.event_by_uid(uid).url.path)


def test_sync_tokens_report_exactly_what_changed(dav_node: DavNode) -> None:
    calendar = dav_node.caldav().principal().make_calendar(name="Sync", cal_id="sync")
    for n in range(5):
        calendar.save_event(single(f"event-{n}", paris(10 + n, 10), f"Event {n}"))
    initial = calendar.get_objects_by_sync_token(load_objects=True, disable_fallback=True)
    token = initial.sync_token
    assert token and not str(token).startswith("fake-")
    assert uids(list(initial)) == [f"event-{n}" for n in range(5)]

    # Nothing changed: nothing reported, same token allowed to be reused.
    unchanged = calendar.get_objects_by_sync_token(token, disable_fallback=True)
    assert list(unchanged) == []

    # One created, one modified, one deleted.
    calendar.save_event(single("event-new", paris(20, 10), "New"))
    modified = calendar.event_by_uid("event-1")
    modified.icalendar_component["SUMMARY"] = "Event 1, renamed"
    modified.save()
    deleted_href = calendar.event_by_uid("event-3").url.path
    calendar.event_by_uid("event-3").delete()

    with dav_node.http() as http:
        response = report(
            http,
            calendar.url.path,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>",
            depth="0",
        )
    assert response.status_code == 207, response.text
    changes = parse_multistatus(response.content)
    # RFC 6578 §3.5.2: a removed member is a response with a 404 status and no propstat.
    removed = [
        h for h, p in changes.items() if "status" in p and " 404 " in (p["status"].text or "")
    ]
    present = [h for h, p in changes.items() if f"{{{DAV}}}getetag" in p]
    assert [last_segment(h) for h in removed] == [last_segment(deleted_href)]
    assert sorted(last_segment(h) for h in present) == sorted(
        last_segment(calendar.event_by_uid(u).url.path) for u in ("event-1", "event-new")
    )

    after = calendar.get_objects_by_sync_token(token, load_objects=True, disable_fallback=True)
    loaded = [o for o in after if o.data]
    assert uids(loaded) == ["event-1", "event-new"]
    assert str(next(o for o in loaded if "event-1" in o.data).icalendar_component["SUMMARY"]) == (
        "Event 1, renamed"
    )
    # The new token is current: nothing more to report.
    assert list(calendar.get_objects_by_sync_token(after.sync_token, disable_fallback=True)) == []


def test_todos(dav_node: DavNode) -> None:
    tasks = (
        dav_node.caldav()
        .principal()
        .make_calendar(name="Tâches", cal_id="todo", supported_calendar_component_set=["VTODO"])
    )
    tasks.save_todo(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//interop//EN\r\n"
        "BEGIN:VTODO\r\nUID:todo-bread\r\nDTSTAMP:20260101T000000Z\r\n"
        "SUMMARY:Acheter du pain\r\nDUE;VALUE=DATE:20260305\r\nSTATUS:NEEDS-ACTION\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )
    tasks.save_todo(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//interop//EN\r\n"
        "BEGIN:VTODO\r\nUID:todo-taxes\r\nDTSTAMP:20260101T000000Z\r\n"
        "SUMMARY:Impôts\r\nSTATUS:NEEDS-ACTION\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    assert uids(tasks.todos()) == ["todo-bread", "todo-taxes"]
    tasks.todo_by_uid("todo-bread").complete()
    # todos() asks the server for the VTODOs that are not COMPLETED (RFC 4791 §7.8.9
    # text-match negate / is-not-defined filters).
    assert uids(tasks.todos()) == ["todo-taxes"]
    assert uids(tasks.todos(include_completed=True)) == ["todo-bread", "todo-taxes"]
    assert "STATUS:COMPLETED" in tasks.todo_by_uid("todo-bread").data
    tasks.todo_by_uid("todo-taxes").delete()
    assert uids(tasks.todos(include_completed=True)) == ["todo-bread"]


def test_event_delete_and_etag_preconditions(dav_node: DavNode) -> None:
    calendar = dav_node.caldav().principal().make_calendar(name="Misc", cal_id="misc")
    event = calendar.save_event(single("gone", paris(4, 10), "Bientôt supprimé"))
    path = event.url.path
    with dav_node.http() as http:
        first = http.get(path)
        assert first.status_code == 200
        etag = first.headers["etag"]
        # RFC 4918 §10.4 / RFC 7232: a stale If-Match is refused, the resource kept.
        stale = http.put(
            path,
            content=single("gone", paris(4, 11), "Changed").encode(),
            headers={"If-Match": '"not-the-etag"', "Content-Type": "text/calendar"},
        )
        assert stale.status_code == 412
        assert http.get(path).headers["etag"] == etag
        # If-None-Match: * on an existing resource (a client's "create") is refused.
        create = http.put(
            path,
            content=single("gone", paris(4, 11), "Changed").encode(),
            headers={"If-None-Match": "*", "Content-Type": "text/calendar"},
        )
        assert create.status_code == 412
    event.delete()
    with dav_node.http() as http:
        assert http.get(path).status_code == 404
    with pytest.raises(caldav_error.NotFoundError):
        calendar.event_by_uid("gone")


def test_another_user_sees_nothing_of_alices_calendars(dav_node: DavNode) -> None:
    dav_node.add_account(BOB)
    alice = dav_node.caldav().principal()
    calendar = alice.make_calendar(name="Privé", cal_id="prive")
    calendar.save_event(single("secret", paris(5, 10), "Secret"))
    with dav_node.http(BOB, PASSWORD) as bob:
        existing = propfind(bob, calendar.url.path, "<d:displayname/>", depth="1")
        missing = propfind(bob, home() + "no-such-calendar/", "<d:displayname/>", depth="1")
        # No existence leak: an existing calendar and a missing one get the same answer.
        assert existing.status_code in {403, 404}
        assert existing.status_code == missing.status_code
        assert "Privé" not in existing.text and "secret" not in existing.text
    bob_calendars = dav_node.caldav(BOB, PASSWORD).principal().calendars()
    assert all(ALICE not in str(c.url) for c in bob_calendars)
    assert isinstance(bob_calendars[0], Calendar)


def default_calendar(principal: Any) -> Any:
    return next(c for c in principal.calendars() if last_segment(c.url.path) == "Calendar")


def attendee_partstat(event: Any, address: str) -> str:
    for attendee in event.icalendar_component.get("ATTENDEE", []):
        if str(attendee).lower() == f"mailto:{address}":
            return str(attendee.params.get("PARTSTAT", "NEEDS-ACTION"))
    raise AssertionError(f"{address} is not an attendee of {event.data}")


def test_scheduling_between_two_local_users(dav_node: DavNode) -> None:
    """RFC 6638 §3.2: the organizer's PUT reaches the attendee's inbox and calendar; the
    attendee's PARTSTAT change comes back to the organizer's copy; a cancellation
    reaches the attendee."""
    dav_node.add_account(BOB)
    alice = dav_node.caldav().principal()
    bob = dav_node.caldav(BOB, PASSWORD).principal()
    alice_calendar = default_calendar(alice)
    alice_calendar.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//interop//EN\r\n"
        + VTIMEZONE
        + "BEGIN:VEVENT\r\nUID:lunch-meeting\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20260312T120000\r\n"
        "DTEND;TZID=Europe/Paris:20260312T133000\r\nSUMMARY:Déjeuner / Lunch\r\n"
        f"ORGANIZER;CN=Alice:mailto:{ALICE}\r\n"
        f"ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{ALICE}\r\n"
        f"ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{BOB}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    invitations = [
        item
        for item in bob.schedule_inbox().get_items()
        if "lunch-meeting" in (item.load().data or "")
    ]
    assert len(invitations) == 1
    assert invitations[0].is_invite_request()
    bob_calendar = default_calendar(bob)
    copy = bob_calendar.event_by_uid("lunch-meeting")
    assert attendee_partstat(copy, BOB) == "NEEDS-ACTION"
    # The organizer's copy records the delivery (RFC 6638 §3.2.9 SCHEDULE-STATUS 1.x).
    organizer_copy = alice_calendar.event_by_uid("lunch-meeting")
    bob_attendee = next(
        a
        for a in organizer_copy.icalendar_component["ATTENDEE"]
        if str(a).lower() == f"mailto:{BOB}"
    )
    assert str(bob_attendee.params.get("SCHEDULE-STATUS", "")).startswith("1."), organizer_copy.data

    # Bob accepts the way a client does: his own copy, his PARTSTAT, PUT.
    copy.change_attendee_status(attendee=f"mailto:{BOB}", partstat="ACCEPTED")
    copy.save()
    assert attendee_partstat(alice_calendar.event_by_uid("lunch-meeting"), BOB) == "ACCEPTED"

    # Alice cancels: Bob's copy is cancelled or removed, and he is told in his inbox.
    alice_calendar.event_by_uid("lunch-meeting").delete()
    try:
        remaining = bob_calendar.event_by_uid("lunch-meeting")
    except caldav_error.NotFoundError:
        remaining = None
    if remaining is not None:
        assert str(remaining.icalendar_component.get("STATUS", "")) == "CANCELLED"
    methods = [
        str(item.load().icalendar_instance.get("METHOD", ""))
        for item in bob.schedule_inbox().get_items()
        if "lunch-meeting" in (item.data or "")
    ]
    assert "CANCEL" in methods, methods
