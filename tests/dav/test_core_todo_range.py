"""RFC 4791 §9.9 time-range on VTODO and VJOURNAL over real HTTPS, one resource per row
of the §9.9 tables, each range checked before/inside/after and on the table's strict
and inclusive edges; answered by the occurrence index (a plain time-range) and by the
exact check (the same range with a prop-filter), which must agree."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.groupware import calendar as calendar_rules
from tests.dav.core_helpers import CAL, calendar_query, hrefs, put, request
from tests.dav.interop_helpers import DavNode, dav_node

__all__ = ["dav_node"]


def _object(uid: str, component: str, *lines: str) -> str:
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//tests//dav-todo//EN",
            f"BEGIN:{component}",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            "SUMMARY:Tâche / task",
            *lines,
            f"END:{component}",
            "END:VCALENDAR",
            "",
        ]
    )


# name -> (component, properties); times are on 2026-03-10 unless written otherwise.
OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "start-duration": ("VTODO", ("DTSTART:20260310T100000Z", "DURATION:PT1H")),
    "start-duration0": ("VTODO", ("DTSTART:20260310T100000Z", "DURATION:PT0S")),
    "start-due": ("VTODO", ("DTSTART:20260310T100000Z", "DUE:20260310T120000Z")),
    "start": ("VTODO", ("DTSTART:20260310T100000Z",)),
    "due": ("VTODO", ("DUE:20260310T120000Z",)),
    "completed-created": (
        "VTODO",
        ("CREATED:20260301T090000Z", "COMPLETED:20260310T100000Z", "STATUS:COMPLETED"),
    ),
    "completed": ("VTODO", ("COMPLETED:20260310T100000Z", "STATUS:COMPLETED")),
    "created": ("VTODO", ("CREATED:20260310T100000Z",)),
    "none": ("VTODO", ()),
    "recurring": (
        "VTODO",
        (
            "DTSTART:20260302T100000Z",
            "DUE:20260302T120000Z",
            "RRULE:FREQ=WEEKLY;COUNT=3",
        ),
    ),
    "recurring-duration": (
        "VTODO",
        ("DTSTART:20260302T100000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=3"),
    ),
    "journal-date": ("VJOURNAL", ("DTSTART;VALUE=DATE:20260310",)),
    "journal-time": ("VJOURNAL", ("DTSTART:20260310T100000Z",)),
    "journal-none": ("VJOURNAL", ()),
}

# (object, range start, range end, matches?) — short times are on 2026-03-10.
CASES: list[tuple[str, str, str, bool]] = [
    # (start <= DTSTART+DURATION) AND ((end > DTSTART) OR (end >= DTSTART+DURATION))
    ("start-duration", "08", "09", False),
    ("start-duration", "1015", "1030", True),
    ("start-duration", "12", "13", False),
    ("start-duration", "11", "12", True),  # start == DTSTART+DURATION: inclusive
    ("start-duration", "09", "10", False),  # end == DTSTART: strict
    ("start-duration0", "09", "10", True),  # end >= DTSTART+DURATION
    ("start-duration0", "10", "11", True),
    ("start-duration0", "1001", "11", False),
    # ((start < DUE) OR (start <= DTSTART)) AND ((end > DTSTART) OR (end >= DUE))
    ("start-due", "08", "09", False),
    ("start-due", "11", "1130", True),
    ("start-due", "13", "14", False),
    ("start-due", "12", "13", False),  # start == DUE: strict
    ("start-due", "09", "10", False),  # end == DTSTART: strict
    ("start-due", "09", "13", True),
    # (start <= DTSTART) AND (end > DTSTART)
    ("start", "08", "09", False),
    ("start", "10", "11", True),
    ("start", "09", "10", False),
    ("start", "11", "12", False),
    # (start < DUE) AND (end >= DUE)
    ("due", "08", "09", False),
    ("due", "11", "12", True),  # end == DUE: inclusive
    ("due", "12", "13", False),  # start == DUE: strict
    ("due", "13", "14", False),
    # ((start <= CREATED) OR (start <= COMPLETED)) AND ((end >= CREATED) OR (end >= COMPLETED))
    ("completed-created", "20260201T000000Z", "20260202T000000Z", False),
    ("completed-created", "20260305T000000Z", "20260306T000000Z", True),
    ("completed-created", "20260301T080000Z", "20260301T090000Z", True),
    ("completed-created", "10", "11", True),
    ("completed-created", "1001", "11", False),
    ("completed-created", "20260311T000000Z", "20260312T000000Z", False),
    # (start <= COMPLETED) AND (end >= COMPLETED)
    ("completed", "08", "09", False),
    ("completed", "09", "10", True),
    ("completed", "10", "11", True),
    ("completed", "11", "12", False),
    # (end > CREATED)
    ("created", "08", "09", False),
    ("created", "09", "10", False),
    ("created", "10", "11", True),
    ("created", "20270101T000000Z", "20270102T000000Z", True),
    # no time: every range
    ("none", "08", "09", True),
    ("none", "19000101T000000Z", "19000102T000000Z", True),
    # a recurring todo, per instance (10:00-12:00 on 2, 9 and 16 March)
    ("recurring", "20260309T110000Z", "20260309T113000Z", True),
    ("recurring", "20260309T120000Z", "20260309T130000Z", False),
    ("recurring", "20260309T130000Z", "20260316T100000Z", False),
    ("recurring", "20260316T110000Z", "20260316T120000Z", True),
    ("recurring", "20260323T000000Z", "20260324T000000Z", False),
    # DTSTART+DURATION per instance: inclusive at DTSTART+DURATION, strict at DTSTART
    ("recurring-duration", "20260309T110000Z", "20260309T120000Z", True),
    ("recurring-duration", "20260309T090000Z", "20260309T100000Z", False),
    ("recurring-duration", "20260316T103000Z", "20260316T103100Z", True),
    # VJOURNAL: a DATE is its whole day; a DATE-TIME an instant; none never matches
    ("journal-date", "20260310T230000Z", "20260311T000000Z", True),
    ("journal-date", "20260311T000000Z", "20260311T010000Z", False),
    ("journal-date", "20260309T230000Z", "20260310T000000Z", False),
    ("journal-time", "10", "11", True),
    ("journal-time", "09", "10", False),
    ("journal-none", "19000101T000000Z", "29000101T000000Z", False),
]


def _stamp(short: str) -> str:
    if "T" in short:
        return short
    return f"20260310T{short.ljust(4, '0')}00Z"


def _filter(component: str, start: str, end: str, *, exact: bool) -> str:
    # A prop-filter makes the query more than a plain time-range, so the engine checks
    # every candidate on the parsed object instead of trusting the index.
    extra = '<c:prop-filter name="UID"/>' if exact else ""
    return (
        f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="{component}">'
        f'<c:time-range start="{start}" end="{end}"/>{extra}</c:comp-filter></c:comp-filter>'
    )


def test_time_range_follows_the_rfc4791_9_9_tables(dav_node: DavNode) -> None:
    with dav_node.http() as client:
        for name, (component, lines) in OBJECTS.items():
            put(client, CAL + f"{name}.ics", _object(name, component, *lines))
        failures = []
        for name, start, end, expected in CASES:
            component = OBJECTS[name][0]
            for exact in (False, True):
                response = request(
                    client,
                    "REPORT",
                    CAL,
                    calendar_query(_filter(component, _stamp(start), _stamp(end), exact=exact)),
                    status=207,
                    headers={"Depth": "1"},
                )
                found = {h.rsplit("/", 1)[-1] for h in hrefs(response.content)}
                if (f"{name}.ics" in found) != expected:
                    failures.append((name, start, end, "exact" if exact else "index", expected))
                # A query only ever returns the component it names.
                assert all(OBJECTS[f.removesuffix(".ics")][0] == component for f in found)
        assert failures == []


def _utc(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (_utc(10, 8), _utc(10, 9), ["none"]),
        (_utc(10, 11, 30), _utc(10, 12, 30), ["created", "due", "none", "start-due"]),
        (_utc(10, 9, 30), _utc(10, 10, 30), ["created", "none", "start", "start-due"]),
        (_utc(16, 11), _utc(16, 12), ["created", "none", "recurring"]),
    ],
)
def test_caldav_library_todo_search(
    dav_node: DavNode, start: dt.datetime, end: dt.datetime, expected: list[str]
) -> None:
    calendar = (
        dav_node.caldav()
        .principal()
        .make_calendar(name="Tâches", cal_id="tasks", supported_calendar_component_set=["VTODO"])
    )
    for name in ("start", "start-due", "due", "created", "none", "recurring", "completed"):
        calendar.save_todo(_object(name, "VTODO", *OBJECTS[name][1]))
    # The library filters the answer again on its side (icalendar-searcher) with its own
    # reading of §9.9: the ranges here stay off the table's edges, where readings agree.
    found = calendar.search(todo=True, start=start, end=end, include_completed=True)
    assert sorted(str(t.icalendar_component["UID"]) for t in found) == sorted(
        [*expected, *(["completed"] if start <= _utc(10, 10) <= end else [])]
    )


_BASE = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
_minutes = st.integers(min_value=0, max_value=6)


def _table(
    todo: dict[str, dt.datetime | dt.timedelta], start: dt.datetime, end: dt.datetime
) -> bool:
    """The RFC 4791 §9.9 VTODO table, transcribed row by row."""
    s, d, due = todo.get("DTSTART"), todo.get("DURATION"), todo.get("DUE")
    c, cr = todo.get("COMPLETED"), todo.get("CREATED")
    if s is not None and due is not None:
        assert isinstance(s, dt.datetime) and isinstance(due, dt.datetime)
        return (start < due or start <= s) and (end > s or end >= due)
    if s is not None and d is not None:
        assert isinstance(s, dt.datetime) and isinstance(d, dt.timedelta)
        return start <= s + d and (end > s or end >= s + d)
    if s is not None:
        return start <= s < end
    if due is not None:
        return start < due <= end
    if c is not None and cr is not None:
        assert isinstance(c, dt.datetime) and isinstance(cr, dt.datetime)
        return (start <= cr or start <= c) and (end >= cr or end >= c)
    if c is not None:
        return start <= c <= end
    if cr is not None:
        return end > cr
    return True


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "DTSTART": _minutes,
            "DURATION": _minutes,
            "DUE": _minutes,
            "COMPLETED": _minutes,
            "CREATED": _minutes,
        },
    ),
    _minutes,
    _minutes,
)
def test_span_agrees_with_the_table(present: dict[str, int], lo: int, width: int) -> None:
    """The index's span and its overlap test give the table's answer, edges included
    (times a few minutes apart, so ranges often start or end exactly on a property)."""
    values: dict[str, dt.datetime | dt.timedelta] = {}
    todo = icalendar.Todo()
    todo.add("UID", "x")
    for name, minute in present.items():
        if name == "DURATION":
            if "DUE" in present or "DTSTART" not in present:
                continue  # DURATION needs DTSTART and excludes DUE (RFC 5545 §3.6.2)
            values[name] = dt.timedelta(minutes=minute)
        elif name == "DUE" and "DTSTART" in present:
            values[name] = _BASE + dt.timedelta(minutes=present["DTSTART"] + minute)
        else:
            values[name] = _BASE + dt.timedelta(minutes=minute)
        todo.add(name, values[name])
    start = _BASE + dt.timedelta(minutes=lo)
    end = start + dt.timedelta(minutes=width + 1)
    span = calendar_rules.range_span(todo, dt.UTC)
    found = True if span is None else calendar_rules.overlaps(span, start, end)
    assert found == _table(values, start, end)


def test_expand_keeps_the_todo_instances_of_the_table(dav_node: DavNode) -> None:
    """RFC 4791 §9.6.5 expand picks instances by §9.9 too: a range that starts exactly
    at DTSTART+DURATION still holds that instance (the row's "start <= ..." is
    inclusive), the next week's instance is outside."""
    weekly = _object(
        "weekly-todo",
        "VTODO",
        "DTSTART:20260302T100000Z",
        "DURATION:PT1H",
        "RRULE:FREQ=WEEKLY;COUNT=3",
    )
    start, end = "20260309T110000Z", "20260309T120000Z"
    with dav_node.http() as client:
        put(client, CAL + "weekly-todo.ics", weekly)
        response = request(
            client,
            "REPORT",
            CAL,
            calendar_query(
                _filter("VTODO", start, end, exact=False),
                props=f'<c:calendar-data><c:expand start="{start}" end="{end}"/></c:calendar-data>',
            ),
            status=207,
            headers={"Depth": "1"},
        )
    assert [h.rsplit("/", 1)[-1] for h in hrefs(response.content)] == ["weekly-todo.ics"]
    body = response.text
    assert body.count("BEGIN:VTODO") == 1, body
    assert "RECURRENCE-ID:20260309T100000Z" in body, body
