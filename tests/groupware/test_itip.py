"""iTIP rules (RFC 5546, RFC 6638 §3.2) as pure functions: who gets which message, and
how received messages change a copy."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from hirondelle.errors import Refused
from hirondelle.groupware import itip
from hirondelle.groupware.itip import Method, ScheduleStatus

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@remote.test"


def event(
    *,
    attendees: dict[str, str] | None = None,
    start: str = "20261201T140000",
    summary: str = "Réunion budget",
    seq: int = 0,
    extra: str = "",
    rrule: str = "",
    overrides: str = "",
) -> Calendar:
    lines = [
        f"ATTENDEE;CN=x;PARTSTAT={state};RSVP=TRUE:mailto:{address}"
        for address, state in (attendees or {BOB: "NEEDS-ACTION"}).items()
    ]
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:meeting-1",
            "DTSTAMP:20261122T100000Z",
            f"DTSTART;TZID=Europe/Paris:{start}",
            "DURATION:PT1H",
            f"SEQUENCE:{seq}",
            f"SUMMARY:{summary}",
            f"ORGANIZER;CN=Alice:mailto:{ALICE}",
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}",
            *lines,
            *([rrule] if rrule else []),
            *([extra] if extra else []),
            "END:VEVENT",
            *([overrides] if overrides else []),
            "END:VCALENDAR",
            "",
        ]
    )
    return itip.parse(text.encode())


def partstats(calendar: Calendar, address: str) -> dict[str, str]:
    return {
        key: itip.partstat(itip.find_attendee(component, address))
        for key, component in itip.by_instance(calendar).items()
        if itip.find_attendee(component, address) is not None
    }


def test_creation_sends_a_request_to_each_attendee_but_the_organizer() -> None:
    new = event(attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"})
    messages = itip.organizer_messages(None, new, organizer=ALICE)
    assert [(m.method, m.recipients) for m in messages] == [
        (Method.REQUEST, (BOB,)),
        (Method.REQUEST, (CAROL,)),
    ]
    sent = messages[0].calendar
    assert str(sent["METHOD"]) == "REQUEST"
    assert itip.uid_of(sent) == "meeting-1"
    assert messages[0].summary() == "Réunion budget"


def test_schedule_agent_client_and_none_are_left_to_the_client() -> None:
    new = event(attendees={BOB: "NEEDS-ACTION"})
    line = itip.find_attendee(itip.scheduling_components(new)[0], BOB)
    assert line is not None
    for value in ("CLIENT", "NONE"):
        line.params["SCHEDULE-AGENT"] = value
        assert itip.organizer_messages(None, new, organizer=ALICE) == []
    line.params["SCHEDULE-AGENT"] = "SOMETHING-NEW"  # RFC 6638 §7.1: unknown = SERVER
    assert len(itip.organizer_messages(None, new, organizer=ALICE)) == 1


def test_insignificant_change_sends_nothing_unless_forced() -> None:
    old = event()
    new = event(extra="X-APPLE-TRAVEL-ADVISORY:1")
    itip.scheduling_components(new)[0].pop("DTSTAMP")
    itip.scheduling_components(new)[0].add("DTSTAMP", dt.datetime(2026, 11, 23, tzinfo=dt.UTC))
    assert itip.organizer_messages(old, new, organizer=ALICE) == []
    line = itip.find_attendee(itip.scheduling_components(new)[0], BOB)
    assert line is not None
    line.params["SCHEDULE-FORCE-SEND"] = "REQUEST"
    forced = itip.organizer_messages(old, new, organizer=ALICE)
    assert [m.method for m in forced] == [Method.REQUEST]
    sent_line = itip.find_attendee(itip.scheduling_components(forced[0].calendar)[0], BOB)
    assert sent_line is not None and "SCHEDULE-FORCE-SEND" not in sent_line.params


def test_moved_event_sends_a_request_and_the_server_numbers_it() -> None:
    old = event(seq=2)
    new = event(start="20261201T150000", seq=2)
    itip.prepare_organizer_copy(old, new)
    assert itip.sequence(itip.scheduling_components(new)[0]) == 3
    messages = itip.organizer_messages(old, new, organizer=ALICE)
    assert [(m.method, m.recipients) for m in messages] == [(Method.REQUEST, (BOB,))]
    assert itip.sequence(itip.scheduling_components(messages[0].calendar)[0]) == 3


def test_removed_attendee_gets_a_cancel_the_others_an_update() -> None:
    old = event(attendees={BOB: "ACCEPTED", CAROL: "NEEDS-ACTION"})
    new = event(attendees={CAROL: "NEEDS-ACTION"})
    messages = itip.organizer_messages(old, new, organizer=ALICE)
    by_recipient = {m.recipients: m for m in messages}
    cancel = by_recipient[(BOB,)]
    assert cancel.method is Method.CANCEL
    component = itip.scheduling_components(cancel.calendar)[0]
    assert str(component["STATUS"]) == "CANCELLED"
    assert itip.sequence(component) == 1
    assert by_recipient[(CAROL,)].method is Method.REQUEST


def test_deletion_and_status_cancelled_send_cancel_to_everyone() -> None:
    old = event(attendees={BOB: "ACCEPTED", CAROL: "TENTATIVE"})
    deleted = itip.organizer_messages(old, None, organizer=ALICE)
    assert sorted((m.method, m.recipients) for m in deleted) == [
        (Method.CANCEL, (BOB,)),
        (Method.CANCEL, (CAROL,)),
    ]
    cancelled = event(attendees={BOB: "ACCEPTED", CAROL: "TENTATIVE"}, extra="STATUS:CANCELLED")
    messages = itip.organizer_messages(old, cancelled, organizer=ALICE)
    assert {m.method for m in messages} == {Method.CANCEL}


OVERRIDE_BOB_ONLY = "\r\n".join(
    [
        "BEGIN:VEVENT",
        "UID:meeting-1",
        "DTSTAMP:20261122T100000Z",
        "RECURRENCE-ID;TZID=Europe/Paris:20261202T140000",
        "DTSTART;TZID=Europe/Paris:20261202T160000",
        "DURATION:PT1H",
        "SUMMARY:Réunion budget",
        f"ORGANIZER;CN=Alice:mailto:{ALICE}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}",
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{BOB}",
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{CAROL}",
        "END:VEVENT",
    ]
)


def test_an_attendee_invited_to_one_instance_gets_only_that_instance() -> None:
    new = event(
        attendees={BOB: "NEEDS-ACTION"},
        rrule="RRULE:FREQ=DAILY;COUNT=3",
        overrides=OVERRIDE_BOB_ONLY,
    )
    messages = {m.recipients: m for m in itip.organizer_messages(None, new, organizer=ALICE)}
    assert len(itip.scheduling_components(messages[(BOB,)].calendar)) == 2
    carol = itip.scheduling_components(messages[(CAROL,)].calendar)
    assert [itip.instance_key(c) for c in carol] == ["20261202T130000Z"]


def test_cancelling_one_instance_sends_a_cancel_for_that_instance() -> None:
    rrule = "RRULE:FREQ=DAILY;COUNT=3"
    old = event(attendees={BOB: "ACCEPTED"}, rrule=rrule, overrides=OVERRIDE_BOB_ONLY)
    new = event(
        attendees={BOB: "ACCEPTED"},
        rrule=rrule,
        overrides=OVERRIDE_BOB_ONLY.replace("END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT"),
    )
    messages = itip.organizer_messages(old, new, organizer=ALICE)
    carol = [m for m in messages if m.recipients == (CAROL,)]
    assert [m.method for m in carol] == [Method.CANCEL]
    cancelled = itip.scheduling_components(carol[0].calendar)
    assert [itip.instance_key(c) for c in cancelled] == ["20261202T130000Z"]
    bob = [m for m in messages if m.recipients == (BOB,)]
    assert [m.method for m in bob] == [Method.CANCEL]


def test_attendee_answer_makes_a_reply_naming_only_them() -> None:
    old = event(attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"})
    new = event(attendees={BOB: "ACCEPTED", CAROL: "NEEDS-ACTION"})
    reply = itip.attendee_reply(old, new, attendee=BOB)
    assert reply is not None
    assert (reply.method, reply.sender, reply.recipients) == (Method.REPLY, BOB, (ALICE,))
    component = itip.scheduling_components(reply.calendar)[0]
    assert [itip.address_of(line) for line in itip.attendee_lines(component)] == [BOB]
    assert itip.partstat(itip.attendee_lines(component)[0]) == "ACCEPTED"
    assert itip.attendee_reply(new, new, attendee=BOB) is None


def test_attendee_deleting_declines_and_organizer_agent_client_is_respected() -> None:
    old = event(attendees={BOB: "ACCEPTED"})
    reply = itip.attendee_reply(old, None, attendee=BOB)
    assert reply is not None
    assert itip.partstat(itip.attendee_lines(itip.scheduling_components(reply.calendar)[0])[0]) == (
        "DECLINED"
    )
    organizer = itip.scheduling_components(old)[0]["ORGANIZER"]
    organizer.params["SCHEDULE-AGENT"] = "CLIENT"
    assert itip.attendee_reply(old, None, attendee=BOB) is None


def test_reply_updates_the_organizer_copy_unless_stale_or_forged() -> None:
    organizer_copy = event(attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"}, seq=1)
    answered = event(attendees={BOB: "DECLINED"}, seq=1)
    reply = itip.attendee_reply(event(seq=1), answered, attendee=BOB)
    assert reply is not None
    # Someone else cannot answer for Bob.
    assert not itip.apply_reply(organizer_copy, reply.calendar, sender=CAROL)
    assert itip.apply_reply(organizer_copy, reply.calendar, sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "DECLINED"}
    assert partstats(organizer_copy, CAROL) == {"": "NEEDS-ACTION"}
    # A reply to an older SEQUENCE is stale (RFC 5546 §2.1.5).
    stale = itip.attendee_reply(
        event(seq=0), event(attendees={BOB: "ACCEPTED"}, seq=0), attendee=BOB
    )
    assert stale is not None
    assert not itip.apply_reply(organizer_copy, stale.calendar, sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "DECLINED"}


def test_reply_for_one_instance_makes_an_override_on_the_organizer_copy() -> None:
    rrule = "RRULE:FREQ=DAILY;COUNT=3"
    organizer_copy = event(rrule=rrule)
    attendee_new = event(
        rrule=rrule,
        overrides=OVERRIDE_BOB_ONLY.replace(
            f"PARTSTAT=NEEDS-ACTION:mailto:{BOB}", f"PARTSTAT=DECLINED:mailto:{BOB}"
        ),
    )
    reply = itip.attendee_reply(event(rrule=rrule), attendee_new, attendee=BOB)
    assert reply is not None
    assert itip.apply_reply(organizer_copy, reply.calendar, sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "NEEDS-ACTION", "20261202T130000Z": "DECLINED"}


def test_request_into_attendee_copy_keeps_the_answer_unless_the_time_moved() -> None:
    first = itip.organizer_messages(None, event(), organizer=ALICE)[0]
    copy = itip.apply_request(None, first.calendar, attendee=BOB)
    assert copy is not None and "METHOD" not in copy
    assert partstats(copy, BOB) == {"": "NEEDS-ACTION"}
    accepted = itip.find_attendee(itip.scheduling_components(copy)[0], BOB)
    assert accepted is not None
    accepted.params["PARTSTAT"] = "ACCEPTED"

    renamed = itip.organizer_messages(event(), event(summary="Budget 2027", seq=1), organizer=ALICE)
    kept = itip.apply_request(copy, renamed[0].calendar, attendee=BOB)
    assert kept is not None and partstats(kept, BOB) == {"": "ACCEPTED"}

    moved = itip.organizer_messages(
        event(seq=1), event(start="20261203T090000", seq=2), organizer=ALICE
    )
    reset = itip.apply_request(kept, moved[0].calendar, attendee=BOB)
    assert reset is not None and partstats(reset, BOB) == {"": "NEEDS-ACTION"}
    # An older request does not undo a newer one.
    assert itip.apply_request(reset, renamed[0].calendar, attendee=BOB) is None


def test_cancel_into_attendee_copy() -> None:
    rrule = "RRULE:FREQ=DAILY;COUNT=3"
    copy = event(attendees={BOB: "ACCEPTED"}, rrule=rrule)
    instance = event(
        attendees={BOB: "ACCEPTED"},
        rrule=rrule,
        overrides=OVERRIDE_BOB_ONLY.replace("END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT"),
    )
    cancels = itip.organizer_messages(
        event(attendees={BOB: "ACCEPTED"}, rrule=rrule, overrides=OVERRIDE_BOB_ONLY),
        instance,
        organizer=ALICE,
    )
    bob_cancel = next(m for m in cancels if m.recipients == (BOB,))
    one_less = itip.apply_cancel(copy, bob_cancel.calendar)
    assert one_less is not None
    master = itip.by_instance(one_less)[""]
    assert "EXDATE" in master and "STATUS" not in master

    whole = itip.organizer_messages(copy, None, organizer=ALICE)[0]
    gone = itip.apply_cancel(one_less, whole.calendar)
    assert gone is not None
    assert all(itip.is_cancelled(c) for c in itip.scheduling_components(gone))


def test_schedule_status_on_organizer_copy() -> None:
    copy = event(attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"})
    assert itip.set_schedule_status(
        copy, {BOB: ScheduleStatus.DELIVERED, CAROL: ScheduleStatus.SENT}
    )
    component = itip.scheduling_components(copy)[0]
    bob = itip.find_attendee(component, BOB)
    assert bob is not None and bob.params["SCHEDULE-STATUS"] == "1.2"
    # A client cannot set SCHEDULE-STATUS: the stored one is kept (RFC 6638 §7.2).
    client = event(attendees={BOB: "NEEDS-ACTION", CAROL: "NEEDS-ACTION"})
    forged = itip.find_attendee(itip.scheduling_components(client)[0], CAROL)
    assert forged is not None
    forged.params["SCHEDULE-STATUS"] = "2.0"
    itip.prepare_organizer_copy(copy, client)
    carol = itip.find_attendee(itip.scheduling_components(client)[0], CAROL)
    assert carol is not None and carol.params["SCHEDULE-STATUS"] == "1.1"


def test_organizer_must_be_the_same_in_every_component() -> None:
    broken = event(
        rrule="RRULE:FREQ=DAILY;COUNT=3",
        overrides=OVERRIDE_BOB_ONLY.replace(f"mailto:{ALICE}", "mailto:mallory@example.test", 1),
    )
    with pytest.raises(Refused, match="same-organizer-in-all-components"):
        itip.check_scheduling_object(broken)
    itip.check_scheduling_object(event(rrule="RRULE:FREQ=DAILY;COUNT=3"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mailto:Bob@Example.TEST", "bob@example.test"),
        ("MAILTO:bob@example.test", "bob@example.test"),
        ("urn:uuid:1234", None),
        ("mailto:", None),
        ("mailto:a b@c", None),
    ],
)
def test_address_of(value: str, expected: str | None) -> None:
    assert itip.address_of(value) == expected


def test_a_late_older_reply_of_the_same_sequence_does_not_undo_a_newer_one() -> None:
    """RFC 5546 §2.1.5: same SEQUENCE, older DTSTAMP: stale."""
    organizer_copy = event(attendees={BOB: "NEEDS-ACTION"})

    def reply(partstat: str, stamp: str) -> Calendar:
        return itip.parse(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
            f"UID:meeting-1\r\nDTSTAMP:{stamp}\r\nORGANIZER:mailto:{ALICE}\r\n"
            f"ATTENDEE;PARTSTAT={partstat}:mailto:{BOB}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )

    assert itip.apply_reply(organizer_copy, reply("DECLINED", "20261122T120000Z"), sender=BOB)
    assert not itip.apply_reply(organizer_copy, reply("ACCEPTED", "20261122T110000Z"), sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "DECLINED"}
    assert itip.apply_reply(organizer_copy, reply("ACCEPTED", "20261122T130000Z"), sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "ACCEPTED"}
    # The bookkeeping never goes out in a message.
    message = itip.organizer_messages(None, organizer_copy, organizer=ALICE)[0]
    assert itip.REPLY_STAMP not in message.calendar.to_ical().decode()


def test_deleting_one_occurrence_of_an_invitation_declines_it() -> None:
    rrule = "RRULE:FREQ=DAILY;COUNT=3"
    old = event(attendees={BOB: "ACCEPTED"}, rrule=rrule)
    new = event(
        attendees={BOB: "ACCEPTED"},
        rrule=rrule,
        extra="EXDATE;TZID=Europe/Paris:20261202T140000",
    )
    reply = itip.attendee_reply(old, new, attendee=BOB)
    assert reply is not None
    [declined] = itip.scheduling_components(reply.calendar)
    assert itip.instance_key(declined) == "20261202T130000Z"
    assert itip.partstat(itip.attendee_lines(declined)[0]) == "DECLINED"
    organizer_copy = event(attendees={BOB: "ACCEPTED"}, rrule=rrule)
    assert itip.apply_reply(organizer_copy, reply.calendar, sender=BOB)
    assert partstats(organizer_copy, BOB) == {"": "ACCEPTED", "20261202T130000Z": "DECLINED"}
