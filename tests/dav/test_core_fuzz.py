"""Property tests: the DAV XML request parser and the iCalendar/vCard intake accept or
refuse with their own error, never with another exception, whatever the input."""

from __future__ import annotations

import contextlib
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.dav import paths
from hirondelle.dav import xml as dx
from hirondelle.groupware import calendar as calendar_rules
from hirondelle.groupware import contacts as contact_rules
from hirondelle.groupware import filters
from tests.dav.core_helpers import card, event

NAMES = [
    "DAV:propfind",
    "DAV:prop",
    "DAV:allprop",
    "DAV:propname",
    "DAV:sync-collection",
    "DAV:sync-token",
    "DAV:limit",
    "DAV:nresults",
    "DAV:href",
    "DAV:propertyupdate",
    "DAV:set",
    "DAV:remove",
    "C:calendar-query",
    "C:calendar-multiget",
    "C:filter",
    "C:comp-filter",
    "C:prop-filter",
    "C:param-filter",
    "C:text-match",
    "C:time-range",
    "C:is-not-defined",
    "C:calendar-data",
    "C:expand",
    "C:free-busy-query",
    "R:addressbook-query",
    "R:filter",
    "R:prop-filter",
    "R:text-match",
    "R:addressbook-multiget",
]
ATTRS = ["name", "start", "end", "collation", "negate-condition", "match-type", "test", "version"]
VALUES = ["VCALENDAR", "VEVENT", "20260101T000000Z", "2026", "", "yes", "i;octet", "allof", "x"]


def _tree(depth: int) -> st.SearchStrategy[str]:
    def render(name: str, attrs: dict[str, str], children: list[str], text: str) -> str:
        prefix, local = name.split(":", 1) if not name.startswith("DAV:") else ("d", name[4:])
        prefix = {"C": "c", "R": "r", "d": "d"}[prefix]
        attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
        return f"<{prefix}:{local}{attributes}>{text}{''.join(children)}</{prefix}:{local}>"

    children = st.lists(_tree(depth - 1), max_size=3) if depth > 0 else st.just([])
    return st.builds(
        render,
        st.sampled_from(NAMES),
        st.dictionaries(st.sampled_from(ATTRS), st.sampled_from(VALUES), max_size=3),
        children,
        st.sampled_from(["", "x", "3", "http://hirondelle.invalid/sync/1"]),
    )


def _document(inner: str) -> bytes:
    return (
        inner.replace(
            ">",
            ' xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"'
            ' xmlns:r="urn:ietf:params:xml:ns:carddav">',
            1,
        )
    ).encode()


def _parse_all(body: bytes) -> None:
    try:
        root = dx.parse(body)
    except dx.XmlError:
        return
    for parser in (dx.parse_propfind, dx.parse_propertyupdate, dx.parse_report):
        with contextlib.suppress(dx.XmlError):
            parser(root)
    with contextlib.suppress(dx.XmlError):
        dx.parse_mkcol(root, calendar=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree(4))
def test_structured_xml_requests_parse_or_refuse(inner: str) -> None:
    _parse_all(_document(inner))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_refuse(body: bytes) -> None:
    _parse_all(body)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_paths_parse_or_refuse(path: str) -> None:
    try:
        location = paths.parse("/dav/" + path)
    except paths.BadPath:
        return
    assert location.kind in ("root", "principals", "principal", "home", "collection", "resource")


def _mutations(text: str) -> st.SearchStrategy[str]:
    lines = text.split("\r\n")

    def mutate(index: int, action: int, junk: str) -> str:
        copy = list(lines)
        i = index % len(copy)
        if action == 0:
            del copy[i]
        elif action == 1:
            copy.insert(i, junk)
        elif action == 2:
            copy[i] = copy[i][: len(copy[i]) // 2] + junk
        else:
            copy[i] = junk
        return "\r\n".join(copy)

    junk = st.text(
        alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
    ) | st.sampled_from(
        [
            "RRULE:FREQ=SECONDLY",
            "RRULE:FREQ=DAILY;UNTIL=2026",
            "RRULE:garbage",
            "DTSTART;TZID=Nowhere/Land:20260101T000000",
            "DTEND:19000101T000000Z",
            "EXDATE:x",
            "RECURRENCE-ID:20260105T100000Z",
            "BEGIN:VTODO",
            "END:VEVENT",
            "DURATION:-P1D",
            "DURATION:P1D",
            "BEGIN:VALARM",
            "UID:",
            "VERSION:4.0",
            "PHOTO;ENCODING=b;TYPE=JPEG:@@@",
            "EMAIL;PREF=1:x",
        ]
    )
    return st.builds(mutate, st.integers(0, 100), st.integers(0, 3), junk)


NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


@settings(max_examples=300, deadline=None)
@given(_mutations(event("fuzz", rrule="FREQ=WEEKLY;COUNT=5", extra="EXDATE:20260112T100000Z")))
def test_icalendar_intake_accepts_or_refuses(text: str) -> None:
    try:
        parsed, item = calendar_rules.index(text, now=NOW)
    except calendar_rules.CalendarError as exc:
        assert exc.precondition in (
            "valid-calendar-data",
            "valid-calendar-object-resource",
            "max-instances",
        )
        return
    assert item.uid and item.component in ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY")
    assert len(item.occurrences) <= calendar_rules.MAX_INDEXED
    # What was accepted can be queried and expanded without error.
    comp = filters.CompFilter(
        "VCALENDAR",
        comp_filters=(
            filters.CompFilter(
                item.component,
                time_range=filters.TimeRange(NOW - dt.timedelta(days=400), NOW),
            ),
        ),
    )
    filters.calendar_matches(parsed.calendar, comp, dt.UTC)
    calendar_rules.expand(
        parsed.calendar, item.component, NOW - dt.timedelta(days=400), NOW, dt.UTC
    )


@settings(max_examples=300, deadline=None)
@given(_mutations(card("fuzz", "Jean Dupont")))
def test_vcard_intake_accepts_or_refuses(text: str) -> None:
    try:
        parsed, item = contact_rules.index(text)
    except contact_rules.ContactError as exc:
        assert exc.precondition in ("valid-address-data", "supported-address-data")
        return
    assert item.uid
    for version in contact_rules.VERSIONS:
        contact_rules.convert(text, version)
    del parsed


HORIZON = dt.datetime(2028, 11, 22, tzinfo=dt.UTC)


@st.composite
def _series(draw: st.DrawFn) -> str:
    frequency = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={frequency}", f"INTERVAL={draw(st.integers(1, 3))}"]
    bound = draw(st.sampled_from(["count", "until", "none"]))
    if bound == "count":
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    if frequency == "WEEKLY" and draw(st.booleans()):
        days = draw(
            st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR"]), min_size=1, unique=True)
        )
        parts.append("BYDAY=" + ",".join(days))
    kind = draw(st.sampled_from(["utc", "floating", "paris", "date"]))
    day = draw(st.integers(1, 28))
    start = f"202501{day:02d}T093000"
    if kind == "utc":
        dtstart, dtend, suffix = f"DTSTART:{start}Z", f"DTEND:202501{day:02d}T103000Z", "Z"
    elif kind == "floating":
        dtstart, dtend, suffix = f"DTSTART:{start}", f"DTEND:202501{day:02d}T103000", ""
    elif kind == "paris":
        dtstart = f"DTSTART;TZID=Europe/Paris:{start}"
        dtend = f"DTEND;TZID=Europe/Paris:202501{day:02d}T103000"
        suffix = ""
    else:
        dtstart, dtend, suffix = f"DTSTART;VALUE=DATE:202501{day:02d}", "", ""
    if bound == "until":
        # Also an UNTIL before DTSTART (a series whose start was moved past its end).
        year = draw(st.sampled_from(["2027", "2024"]))
        parts.append(f"UNTIL={year}0101T000000Z" if kind != "date" else f"UNTIL={year}0101")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:x",
        "BEGIN:VEVENT",
        "UID:series",
        "DTSTAMP:20250101T000000Z",
        dtstart,
        *([dtend] if dtend else []),
        "RRULE:" + ";".join(parts),
    ]
    if draw(st.booleans()):
        # EXDATE of an instance that may or may not exist: both must agree either way.
        lines.append(dtstart.replace("DTSTART", "EXDATE").replace("202501", "202502"))
    lines += ["END:VEVENT"]
    if draw(st.booleans()) and kind != "date":
        rid = dtstart.replace("DTSTART", "RECURRENCE-ID")
        lines += [
            "BEGIN:VEVENT",
            "UID:series",
            "DTSTAMP:20250101T000000Z",
            rid,
            f"DTSTART:20250301T120000{suffix}"
            if kind != "paris"
            else "DTSTART;TZID=Europe/Paris:20250301T120000",
            f"DTEND:20250301T130000{suffix}"
            if kind != "paris"
            else "DTEND;TZID=Europe/Paris:20250301T130000",
            "END:VEVENT",
        ]
    lines += ["END:VCALENDAR", ""]
    return "\r\n".join(lines)


@settings(max_examples=30, deadline=None)
@given(_series(), st.sampled_from([dt.UTC, calendar_rules.zone_of(None)]))
def test_fast_index_expansion_equals_the_reference(text: str, zone: dt.tzinfo) -> None:
    """The index's dateutil expansion gives exactly recurring-ical-events' instances."""
    parsed = calendar_rules.parse(text)
    try:
        fast = calendar_rules.series_spans(parsed.calendar, "VEVENT", zone, HORIZON)
    except (ValueError, TypeError):
        return  # the index falls back to the reference itself
    reference = calendar_rules._reference_spans(parsed.calendar, "VEVENT", zone, HORIZON)
    assert fast == reference
