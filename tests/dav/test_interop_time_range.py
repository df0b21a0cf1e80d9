"""Differential property test of calendar-query time-range (RFC 4791 §7.8, §9.9) over
HTTP: hypothesis generates an event (time zones with DST, all-day, recurrence rules with
COUNT/UNTIL or none, INTERVAL, EXDATEs, an overridden instance) and query windows (some
beyond the server's indexing horizon); the server's answer must match the occurrences
recurring-ical-events computes, with the §9.9 overlap rule applied in UTC (dates and
floating times in UTC: the calendar has no calendar-timezone).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import httpx
import icalendar
import recurring_ical_events  # type: ignore[import-untyped]
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.dav.interop_helpers import (
    CALDAV,
    DAV,
    DavNode,
    dav_node,
    home,
    last_segment,
    parse_multistatus,
    propfind,
    report,
)

__all__ = ["dav_node"]

UTC = dt.UTC
ZONES = ("Europe/Paris", "America/New_York", "UTC", "Australia/Sydney")
_names = itertools.count()


@dataclass(frozen=True)
class Event:
    start: dt.datetime  # naive local time in `zone`
    zone: str
    all_day: bool
    minutes: int
    rule: str
    exdates: tuple[int, ...]  # occurrence numbers (1-based, > 0) removed
    moved: int | None  # occurrence number moved by `shift_minutes`
    shift_minutes: int

    def ics(self, uid: str) -> str:
        def value(moment: dt.datetime) -> str:
            if self.all_day:
                return f";VALUE=DATE:{moment:%Y%m%d}"
            if self.zone == "UTC":
                return f":{moment:%Y%m%dT%H%M%S}Z"
            return f";TZID={self.zone}:{moment:%Y%m%dT%H%M%S}"

        length = (
            dt.timedelta(days=max(1, self.minutes // 1440))
            if self.all_day
            else (dt.timedelta(minutes=self.minutes))
        )
        lines = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//tests//time-range//EN",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART{value(self.start)}",
            f"DTEND{value(self.start + length)}",
            "SUMMARY:generated",
        ]
        instances = self.instances()
        if self.rule:
            lines.append(f"RRULE:{self.rule}")
            for n in self.exdates:
                if n < len(instances):
                    lines.append(f"EXDATE{value(instances[n])}")
        lines.append("END:VEVENT")
        if self.rule and self.moved is not None and self.moved < len(instances):
            original = instances[self.moved]
            if self.moved not in self.exdates:
                moved = original + dt.timedelta(minutes=self.shift_minutes)
                lines += [
                    "BEGIN:VEVENT",
                    f"UID:{uid}",
                    "DTSTAMP:20260101T000000Z",
                    f"RECURRENCE-ID{value(original)}",
                    f"DTSTART{value(moved)}",
                    f"DTEND{value(moved + length)}",
                    "SUMMARY:moved",
                    "END:VEVENT",
                ]
        lines.append("END:VCALENDAR")
        return "\r\n".join(lines) + "\r\n"

    def instances(self) -> list[dt.datetime]:
        """The first few instance starts (naive local), for EXDATE and RECURRENCE-ID."""
        if not self.rule:
            return [self.start]
        from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

        rule = rrulestr(self.rule, dtstart=self.start, ignoretz=True)
        return list(itertools.islice(iter(rule), 6))


def _utc(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def expected(ics: str, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether an instance overlaps [start, end) by RFC 4791 §9.9 (DTEND given, > DTSTART):
    start < DTEND and end > DTSTART, all in UTC."""
    calendar = icalendar.Calendar.from_ical(ics)
    margin = dt.timedelta(days=8)
    for component in recurring_ical_events.of(calendar).between(start - margin, end + margin):
        begin = _utc(component.decoded("DTSTART"))
        finish = _utc(component.decoded("DTEND"))
        if start < finish and end > begin:
            return True
    return False


RULES = st.one_of(
    st.just(""),
    st.builds(
        lambda freq, interval, bound: f"FREQ={freq};INTERVAL={interval}{bound}",
        st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
        st.integers(1, 3),
        st.one_of(
            st.just(""),
            st.integers(1, 30).map(lambda n: f";COUNT={n}"),
            st.dates(dt.date(2026, 2, 1), dt.date(2029, 12, 31)).map(
                lambda d: f";UNTIL={d:%Y%m%d}T235959Z"
            ),
        ),
    ),
)

EVENTS = st.builds(
    Event,
    start=st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31)).map(
        lambda m: m.replace(minute=m.minute // 15 * 15, second=0, microsecond=0)
    ),
    zone=st.sampled_from(ZONES),
    all_day=st.booleans(),
    minutes=st.sampled_from([15, 60, 90, 240, 1440, 3 * 1440]),
    rule=RULES,
    exdates=st.sets(st.integers(1, 4), max_size=2).map(lambda s: tuple(sorted(s))),
    moved=st.one_of(st.none(), st.integers(1, 4)),
    shift_minutes=st.sampled_from([-120, 60, 24 * 60, 3 * 24 * 60]),
)

FREE_WINDOWS = st.tuples(
    st.datetimes(dt.datetime(2025, 12, 1), dt.datetime(2031, 1, 1)).map(
        lambda m: m.replace(second=0, microsecond=0, tzinfo=UTC)
    ),
    st.sampled_from([1, 60, 24 * 60, 7 * 24 * 60, 45 * 24 * 60, 400 * 24 * 60]),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Event, list[tuple[dt.datetime, int]]]:
    """An event and windows: some anywhere in 2025-2031, most near the event's instances
    (an offset from its start, to hit boundaries, EXDATEs and the moved instance)."""
    event = draw(EVENTS)
    near = st.tuples(
        st.integers(-3 * 24 * 60, 3 * 366 * 24 * 60).map(
            lambda minutes: event.start.replace(tzinfo=UTC) + dt.timedelta(minutes=minutes)
        ),
        st.sampled_from([1, 30, 60, 12 * 60, 24 * 60, 7 * 24 * 60, 45 * 24 * 60]),
    )
    windows = draw(st.lists(st.one_of(FREE_WINDOWS, near, near), min_size=2, max_size=5))
    return event, windows


def query(http: httpx.Client, calendar: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    answer = report(
        http,
        calendar,
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
        "<d:prop><d:getetag/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>",
    )
    assert answer.status_code == 207, answer.text
    return [last_segment(h) for h in parse_multistatus(answer.content)]


def test_time_range_matches_recurring_ical_events(dav_node: DavNode) -> None:
    calendar = home() + "Calendar/"
    with dav_node.http() as http:
        propfind(http, home(), "<d:resourcetype/>", depth="1")

        @settings(
            max_examples=50,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(case=cases())
        # Found by this test: a series whose UNTIL is before its DTSTART (dav-bugs.md B1).
        @example(
            case=(
                Event(
                    start=dt.datetime(2027, 1, 1, 0, 0),
                    zone="Europe/Paris",
                    all_day=False,
                    minutes=90,
                    rule="FREQ=DAILY;INTERVAL=1;UNTIL=20260201T235959Z",
                    exdates=(),
                    moved=None,
                    shift_minutes=-120,
                ),
                [(dt.datetime(2027, 1, 1, 0, 0, tzinfo=UTC), 1)],
            )
        )
        def check(case: tuple[Event, list[tuple[dt.datetime, int]]]) -> None:
            event, windows = case
            name = f"gen-{next(_names)}.ics"
            ics = event.ics(name.removesuffix(".ics"))
            created = http.put(
                calendar + name, content=ics.encode(), headers={"Content-Type": "text/calendar"}
            )
            assert created.status_code == 201, (created.text, ics)
            try:
                for start, minutes in windows:
                    end = start + dt.timedelta(minutes=minutes)
                    found = query(http, calendar, start, end)
                    assert found == ([name] if expected(ics, start, end) else []), (
                        f"{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}",
                        ics,
                    )
            finally:
                assert http.delete(calendar + name).status_code in {200, 204}

        check()
