"""RFC 4791 §9.6 and §7.6: calendar-data partial retrieval (C:comp, C:prop with novalue,
C:allprop, C:allcomp) in calendar-query and calendar-multiget, over real HTTPS on both
backends, plus property tests of the selection on arbitrary content lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.dav.partial import CompSelection, select
from tests.dav.core_helpers import CAL, calendar_query, event, put, request, time_range_filter
from tests.dav.interop_helpers import CALDAV, DAV, DavNode, dav_node, parse_multistatus

__all__ = ["dav_node"]

LONG = ", ".join(["Une description assez longue pour être pliée sur plusieurs lignes"] * 3)

MEETING = event(
    "meeting",
    start="20260301T080000Z",
    end="20260301T090000Z",
    summary="Réunion",
    extra=(
        'ATTENDEE;CN="Dupont: Jean";PARTSTAT=ACCEPTED:mailto:jean@example.test\r\n'
        "LOCATION:Salle 2\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:rappel\r\nTRIGGER:-PT15M\r\nEND:VALARM"
    ),
).replace(
    "BEGIN:VEVENT",
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT",
)

# RFC 4791 §7.6 (the example): VCALENDAR with VERSION, VEVENT with some properties,
# no VALARM, no VTIMEZONE.
SELECTION = (
    '<c:calendar-data><c:comp name="VCALENDAR"><c:prop name="VERSION"/>'
    '<c:comp name="VEVENT"><c:prop name="SUMMARY"/><c:prop name="UID"/>'
    '<c:prop name="DTSTART"/><c:prop name="ATTENDEE" novalue="yes"/></c:comp>'
    "</c:comp></c:calendar-data>"
)


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\n ", "").strip().split("\n")


def _data(body: bytes, href: str) -> str:
    return parse_multistatus(body)[href][f"{{{CALDAV}}}calendar-data"].text or ""


@pytest.fixture
def calendar(dav_node: DavNode):  # type: ignore[no-untyped-def]
    with dav_node.http() as client:
        put(client, CAL + "meeting.ics", MEETING)
        put(
            client,
            CAL + "long.ics",
            # Stored folded (RFC 5545 §3.1): the selection keeps the stored lines.
            event(
                "long", start="20260302T080000Z", extra=f"DESCRIPTION:{LONG[:60]}\r\n {LONG[60:]}"
            ),
        )
        yield client


def test_calendar_query_returns_only_the_selection(calendar) -> None:  # type: ignore[no-untyped-def]
    body = calendar_query(
        time_range_filter("20260301T000000Z", "20260302T000000Z"), "<d:getetag/>" + SELECTION
    )
    response = request(calendar, "REPORT", CAL, body, status=207, headers={"Depth": "1"})
    assert _lines(_data(response.content, CAL + "meeting.ics")) == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:meeting",
        "DTSTART:20260301T080000Z",
        "SUMMARY:Réunion",
        # §9.6.4 novalue: the parameters stay (the quoted colon is not the value's start).
        'ATTENDEE;CN="Dupont: Jean";PARTSTAT=ACCEPTED:',
        "END:VEVENT",
        "END:VCALENDAR",
    ]


def test_multiget_allprop_allcomp_and_folded_lines(calendar) -> None:  # type: ignore[no-untyped-def]
    selection = (
        '<c:calendar-data><c:comp name="VCALENDAR"><c:allprop/>'
        '<c:comp name="VEVENT"><c:allprop/><c:allcomp/></c:comp></c:comp></c:calendar-data>'
    )
    multiget = (
        f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:prop>{selection}</d:prop>'
        f"<d:href>{CAL}meeting.ics</d:href><d:href>{CAL}long.ics</d:href></c:calendar-multiget>"
    )
    response = request(calendar, "REPORT", CAL, multiget, status=207, headers={"Depth": "1"})
    meeting = _data(response.content, CAL + "meeting.ics")
    # VEVENT with everything in it (VALARM too), VCALENDAR's properties, no VTIMEZONE.
    assert "VTIMEZONE" not in meeting and "PRODID:-//tests//dav-core//EN" in meeting
    assert "BEGIN:VALARM" in meeting and "TRIGGER:-PT15M" in meeting
    assert "LOCATION:Salle 2" in meeting
    long = _data(response.content, CAL + "long.ics")
    assert f"DESCRIPTION:{LONG}" in "".join(_lines(long))
    assert f"\n {LONG[60:]}" in long.replace("\r\n", "\n")


def test_no_comp_returns_the_whole_object(calendar) -> None:  # type: ignore[no-untyped-def]
    body = calendar_query(
        time_range_filter("20260301T000000Z", "20260302T000000Z"), "<c:calendar-data/>"
    )
    response = request(calendar, "REPORT", CAL, body, status=207, headers={"Depth": "1"})
    assert _lines(_data(response.content, CAL + "meeting.ics")) == _lines(MEETING)


def test_comp_without_prop_returns_no_property(calendar) -> None:  # type: ignore[no-untyped-def]
    # §9.6.1: (allprop | prop*), (allcomp | comp*): an empty comp selects no property.
    selection = (
        '<c:calendar-data><c:comp name="VCALENDAR"><c:comp name="VEVENT"/></c:comp>'
        "</c:calendar-data>"
    )
    body = calendar_query(time_range_filter("20260301T000000Z", "20260302T000000Z"), selection)
    response = request(calendar, "REPORT", CAL, body, status=207, headers={"Depth": "1"})
    assert _lines(_data(response.content, CAL + "meeting.ics")) == [
        "BEGIN:VCALENDAR",
        "BEGIN:VEVENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]


def test_expand_then_selection(calendar) -> None:  # type: ignore[no-untyped-def]
    put(
        calendar,
        CAL + "weekly.ics",
        event("weekly", start="20260105T100000Z", rrule="FREQ=WEEKLY;COUNT=3"),
    )
    selection = (
        '<c:calendar-data><c:expand start="20260101T000000Z" end="20260201T000000Z"/>'
        '<c:comp name="VCALENDAR"><c:comp name="VEVENT"><c:prop name="RECURRENCE-ID"/>'
        "</c:comp></c:comp></c:calendar-data>"
    )
    body = calendar_query(time_range_filter("20260101T000000Z", "20260201T000000Z"), selection)
    response = request(calendar, "REPORT", CAL, body, status=207, headers={"Depth": "1"})
    lines = _lines(_data(response.content, CAL + "weekly.ics"))
    assert [x for x in lines if x.startswith("RECURRENCE-ID")] == [
        "RECURRENCE-ID:20260105T100000Z",
        "RECURRENCE-ID:20260112T100000Z",
        "RECURRENCE-ID:20260119T100000Z",
    ]
    assert not any(x.startswith(("RRULE", "SUMMARY", "DTSTART")) for x in lines)


@pytest.mark.parametrize(
    ("selection", "status"),
    [
        ('<c:comp name="VEVENT"><c:allprop/></c:comp>', 403),
        ("<c:comp><c:allprop/></c:comp>", 400),
        ('<c:comp name="VCALENDAR"><c:prop/></c:comp>', 400),
    ],
)
def test_bad_selection_is_refused(calendar, selection: str, status: int) -> None:  # type: ignore[no-untyped-def]
    body = calendar_query(
        time_range_filter("20260301T000000Z", "20260302T000000Z"),
        f"<c:calendar-data>{selection}</c:calendar-data>",
    )
    request(calendar, "REPORT", CAL, body, status=status, headers={"Depth": "1"})


# -- the selection on arbitrary input ------------------------------------------------------

_NAMES = st.sampled_from(["VEVENT", "VTODO", "VALARM", "X-A"])
_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=120,
)


@st.composite
def _selections(draw: st.DrawFn, name: str = "VCALENDAR", depth: int = 0) -> CompSelection:
    props = draw(st.lists(st.tuples(st.sampled_from(["SUMMARY", "UID", "X"]), st.booleans())))
    comps: tuple[CompSelection, ...] = ()
    if depth < 2:
        comps = tuple(
            draw(st.lists(_NAMES.flatmap(lambda n: _selections(n, depth + 1)), max_size=2))
        )
    return CompSelection(
        name,
        allprop=draw(st.booleans()),
        props=tuple(props),
        allcomp=draw(st.booleans()),
        comps=comps,
    )


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINE, max_size=30), selection=_selections())
def test_select_keeps_only_input_lines(lines: list[str], selection: CompSelection) -> None:
    text = "\r\n".join(["BEGIN:VCALENDAR", *lines, "END:VCALENDAR"]) + "\r\n"
    out = select(text, selection)
    assert out == "" or out.endswith("\r\n")
    source = _lines(text)
    for line in _lines(out) if out else []:
        # Each line is an input line, or one cut after its value's colon (novalue).
        assert line in source or (
            line.endswith(":") and any(s.startswith(line[:-1]) for s in source)
        ), line


def test_allprop_allcomp_keeps_everything() -> None:
    everything = CompSelection("VCALENDAR", allprop=True, allcomp=True)
    assert _lines(select(MEETING, everything)) == _lines(MEETING)
