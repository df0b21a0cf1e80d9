"""Properties of the iTIP rules over generated events (hypothesis): who gets a message,
that what lands in an attendee's calendar is storable, and that a REPLY changes exactly
the one answer it carries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from hirondelle.groupware import calendar as calendar_rules
from hirondelle.groupware import itip
from hirondelle.groupware.itip import Method

ORGANIZER = "org@example.test"
PEOPLE = [f"user{i}@example.test" for i in range(6)]
PARTSTATS = ["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"]
AGENTS = ["SERVER", "CLIENT", "NONE", None]

attendee_sets = st.dictionaries(
    st.sampled_from(PEOPLE),
    st.tuples(st.sampled_from(PARTSTATS), st.sampled_from(AGENTS)),
    max_size=5,
)


def build(
    attendees: dict[str, tuple[str, str | None]],
    *,
    hour: int = 14,
    recurring: bool = False,
    summary: str = "Point",
) -> Calendar:
    lines = []
    for address, (partstat, agent) in attendees.items():
        agent_param = f";SCHEDULE-AGENT={agent}" if agent else ""
        lines.append(f"ATTENDEE;PARTSTAT={partstat}{agent_param}:mailto:{address}")
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//test//EN",
            "BEGIN:VEVENT",
            "UID:prop-1",
            "DTSTAMP:20261122T100000Z",
            f"DTSTART:20261201T{hour:02d}0000Z",
            "DURATION:PT1H",
            f"SUMMARY:{summary}",
            *(["RRULE:FREQ=WEEKLY;COUNT=4"] if recurring else []),
            f"ORGANIZER:mailto:{ORGANIZER}",
            *lines,
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    return itip.parse(text)


def scheduled(attendees: dict[str, tuple[str, str | None]]) -> set[str]:
    return {a for a, (_, agent) in attendees.items() if agent in ("SERVER", None)}


@settings(max_examples=150, deadline=None)
@given(attendee_sets, st.booleans())
def test_creation_invites_exactly_the_server_scheduled_attendees(
    attendees: dict[str, tuple[str, str | None]], recurring: bool
) -> None:
    messages = itip.organizer_messages(
        None, build(attendees, recurring=recurring), organizer=ORGANIZER
    )
    assert {m.method for m in messages} <= {Method.REQUEST}
    assert {m.recipients[0] for m in messages} == scheduled(attendees)
    for message in messages:
        # What lands in the attendee's calendar is a storable object (RFC 4791 §4.1).
        copy = itip.apply_request(None, message.calendar, attendee=message.recipients[0])
        assert copy is not None
        calendar_rules.index(copy.to_ical().decode())
        assert (
            itip.partstat(
                itip.find_attendee(itip.scheduling_components(copy)[0], message.recipients[0])
            )
            == "NEEDS-ACTION"
        )


@settings(max_examples=150, deadline=None)
@given(attendee_sets, attendee_sets, st.booleans(), st.booleans())
def test_every_attendee_who_leaves_gets_a_cancel_and_no_one_else(
    before: dict[str, tuple[str, str | None]],
    after: dict[str, tuple[str, str | None]],
    moved: bool,
    renamed: bool,
) -> None:
    old = build(before)
    new = build(after, hour=15 if moved else 14, summary="Autre" if renamed else "Point")
    messages = itip.organizer_messages(old, new, organizer=ORGANIZER)
    cancelled = {m.recipients[0] for m in messages if m.method is Method.CANCEL}
    requested = {m.recipients[0] for m in messages if m.method is Method.REQUEST}
    # An attendee whose agent changed away from SERVER is the client's business.
    assert cancelled == {a for a in scheduled(before) if a not in after}
    assert requested <= scheduled(after)
    if moved or renamed:
        assert requested == scheduled(after)
    else:
        # Only newcomers, or a changed attendee list, make an update for the others.
        newcomers = scheduled(after) - set(before)
        assert newcomers <= requested
        if {a: agent for a, (_, agent) in before.items()} == {
            a: agent for a, (_, agent) in after.items()
        }:
            # The same people, only answers differ: nothing significant to send.
            assert messages == []


@settings(max_examples=150, deadline=None)
@given(
    attendee_sets.filter(lambda a: bool(scheduled(a))),
    st.data(),
)
def test_a_reply_changes_only_its_attendees_answer(
    attendees: dict[str, tuple[str, str | None]], data: st.DataObject
) -> None:
    organizer_copy = build(attendees)
    who = data.draw(st.sampled_from(sorted(scheduled(attendees))))
    answer = data.draw(st.sampled_from(PARTSTATS))
    attendee_old = build(attendees)
    attendee_new = build({**attendees, who: (answer, attendees[who][1])})
    reply = itip.attendee_reply(attendee_old, attendee_new, attendee=who)
    if answer == attendees[who][0]:
        assert reply is None
        return
    assert reply is not None and reply.recipients == (ORGANIZER,)
    assert itip.apply_reply(organizer_copy, reply.calendar, sender=who)
    component = itip.scheduling_components(organizer_copy)[0]
    for address, (partstat, _) in attendees.items():
        expected = answer if address == who else partstat
        assert itip.partstat(itip.find_attendee(component, address)) == expected
    # Nobody else may send it.
    others = [p for p in PEOPLE if p != who]
    assert not itip.apply_reply(build(attendees), reply.calendar, sender=others[0])
