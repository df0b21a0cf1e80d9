"""Calendar object resources: validation, UID, occurrence indexing, expansion.

RFC 4791 §4.1 (one component type and one UID per resource, no METHOD), §5.3.2.1
preconditions (``valid-calendar-data``, ``valid-calendar-object-resource``,
``supported-calendar-component``, ``max-resource-size``), §9.9 (time-range semantics),
§9.6.5 (``expand``), RFC 5545 §3.8.5 (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides),
with ``icalendar`` and ``recurring-ical-events``.

Occurrences are expanded at write time up to :data:`HORIZON` ahead of now (or
:data:`MAX_INDEXED` instances) and stored as UTC microsecond ranges; a series that goes
further keeps ``indexed_until`` so a query beyond it expands the series lazily.
Floating times and all-day dates are placed in the collection's ``calendar-timezone``
when it has one, UTC otherwise (RFC 4791 §7.3 says floating times are evaluated in the
calendar's time zone). A TZID without its VTIMEZONE is resolved by name from the IANA
database, which is what timezone-by-reference clients (RFC 7809) rely on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

from hirondelle.store.groupware import IndexedObject, Occurrence

COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")
# How far ahead of now recurring series are indexed, and at most how many instances.
HORIZON = dt.timedelta(days=2 * 366)
MAX_INDEXED = 2000
# CALDAV:max-instances (RFC 4791 §5.2.8): at most this many instances per series.
MAX_INSTANCES = 200_000
# indexed_until of an object without time: below every query's end.
TIMELESS = -(2**62)
# At most this many instances are looked at by one lazy expansion or one ``expand``
# (a FREQ=SECONDLY rule would otherwise make a query run for hours).
MAX_EXPANDED = 20_000
# Earliest instant that time-range expansion starts from for a series.
_EPOCH = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
UTC = dt.UTC
# icalendar's property values are a wide union; rules read them dynamically.
Component = Any


class CalendarError(Exception):
    """A refused calendar object: ``precondition`` is the CALDAV element name."""

    def __init__(self, precondition: str, message: str) -> None:
        super().__init__(message)
        self.precondition = precondition
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedCalendarObject:
    calendar: icalendar.Calendar
    component: str
    uid: str


def etag_of(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def zone_of(timezone_text: str | None) -> dt.tzinfo:
    """The tzinfo of a calendar-timezone property value (a VCALENDAR with one VTIMEZONE)."""
    if not timezone_text:
        return UTC
    try:
        calendar = icalendar.Calendar.from_ical(timezone_text)
        for tz in calendar.walk("VTIMEZONE"):
            tzid = str(tz.get("TZID", ""))
            try:
                return ZoneInfo(tzid)
            except (ZoneInfoNotFoundError, ValueError):
                return tz.to_tz()  # type: ignore[attr-defined,no-any-return]
    except Exception:  # a stored value was validated at PROPPATCH; be lenient here
        return UTC
    return UTC


def validate_timezone(text: str) -> None:
    """RFC 4791 §5.2.2: calendar-timezone holds a VCALENDAR with exactly one VTIMEZONE."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:
        raise CalendarError("valid-calendar-data", "calendar-timezone is not iCalendar") from exc
    zones = calendar.walk("VTIMEZONE")
    if len(zones) != 1 or any(
        c.name not in ("VCALENDAR", "VTIMEZONE", "STANDARD", "DAYLIGHT") for c in calendar.walk()
    ):
        raise CalendarError("valid-calendar-data", "calendar-timezone needs one VTIMEZONE")


_SINGLE = (
    "UID",
    "DTSTART",
    "DTEND",
    "DUE",
    "DURATION",
    "RECURRENCE-ID",
    "DTSTAMP",
    "SEQUENCE",
    "STATUS",
    "TRANSP",
    "ORGANIZER",
    "SUMMARY",
)


def parse(data: str) -> ParsedCalendarObject:
    """RFC 4791 §4.1 and §5.3.2.1: a calendar object resource, or CalendarError."""
    if "\x00" in data:
        raise CalendarError("valid-calendar-data", "NUL character in iCalendar data")
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:
        raise CalendarError("valid-calendar-data", f"not iCalendar: {exc}") from exc
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise CalendarError("valid-calendar-data", "not a VCALENDAR")
    if "METHOD" in calendar:
        raise CalendarError(
            "valid-calendar-object-resource", "METHOD is not allowed in a stored object"
        )
    kinds: set[str] = set()
    uids: set[str] = set()
    masters = 0
    for sub in calendar.subcomponents:
        if sub.name == "VTIMEZONE":
            continue
        if sub.name not in ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY"):
            if str(sub.name).startswith("X-"):
                continue
            raise CalendarError("valid-calendar-data", f"unknown component {sub.name}")
        kinds.add(sub.name)
        for name in _SINGLE:
            if isinstance(sub.get(name), list):
                # RFC 5545 §3.6.1: these MUST NOT occur more than once.
                raise CalendarError("valid-calendar-data", f"{name} occurs more than once")
        uid = sub.get("UID")
        if uid is None or not str(uid).strip():
            raise CalendarError("valid-calendar-object-resource", "component without UID")
        uids.add(str(uid))
        if "RECURRENCE-ID" not in sub:
            masters += 1
        _check_dates(sub)
    if not kinds:
        raise CalendarError("valid-calendar-object-resource", "no calendar component")
    if len(kinds) > 1:
        raise CalendarError("valid-calendar-object-resource", "more than one component type")
    if len(uids) > 1:
        raise CalendarError("valid-calendar-object-resource", "more than one UID")
    if masters > 1:
        raise CalendarError(
            "valid-calendar-object-resource", "two components without RECURRENCE-ID"
        )
    return ParsedCalendarObject(calendar, kinds.pop(), uids.pop())


def _check_dates(component: Component) -> None:
    """Date properties must decode (icalendar parses lazily and keeps bad values)."""
    for name in ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID"):
        if name in component:
            try:
                value = component[name].dt
            except Exception as exc:
                raise CalendarError("valid-calendar-data", f"{name} is not a date") from exc
            if not isinstance(value, dt.date):
                raise CalendarError("valid-calendar-data", f"{name} is not a date")
    if "DTEND" in component and "DURATION" in component:
        raise CalendarError("valid-calendar-data", "DTEND and DURATION together")
    rules = component.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        if not isinstance(rule, icalendar.vRecur) or not rule.get("FREQ"):
            raise CalendarError("valid-calendar-data", "RRULE does not parse")
        start = component.get("DTSTART")
        if start is not None and estimated_instances(rule, start.dt) > MAX_INSTANCES:
            raise CalendarError(
                "max-instances", f"the rule makes more than {MAX_INSTANCES} instances"
            )
    errors = getattr(component, "errors", None)
    if errors:
        raise CalendarError("valid-calendar-data", f"{errors[0][0]}: {errors[0][1]}")


_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}


def estimated_instances(rule: Any, start: dt.date | dt.datetime) -> float:
    """An upper estimate of how many instances ``rule`` makes (RFC 4791 §5.2.8
    max-instances): an unbounded rule counts a century. Expanding a series (dateutil)
    walks every instance from DTSTART, so this bounds the work of any query on it."""
    count = rule.get("COUNT")
    if count:
        return float(int(count[0]))
    frequency = str(rule.get("FREQ")[0]).upper()
    step = _FREQ_SECONDS.get(frequency)
    if step is None:
        raise CalendarError("valid-calendar-data", f"unknown FREQ {frequency}")
    try:
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
    except (TypeError, ValueError) as exc:
        raise CalendarError("valid-calendar-data", "bad INTERVAL") from exc
    span = dt.timedelta(days=100 * 365)
    until = rule.get("UNTIL")
    if until:
        with contextlib.suppress(TypeError, ValueError):
            span = min(span, to_utc(until[0], UTC) - to_utc(start, UTC))
    multiplier = 1.0
    for key, values in rule.items():
        if str(key).upper().startswith("BY") and str(key).upper() != "BYSETPOS":
            multiplier *= max(1, len(values))
    return max(0.0, span.total_seconds()) / (step * interval) * multiplier


def to_utc(value: dt.date | dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)


def to_us(value: dt.datetime) -> int:
    return int(value.timestamp()) * 1_000_000 + value.microsecond


def from_us(value: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=value)


def instance_span(component: Component, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime] | None:
    """RFC 4791 §9.9: the [start, end) an instance occupies, or None for no time."""
    start_value = component.get("DTSTART")
    name = component.name
    if name == "VTODO":
        due = component.get("DUE")
        if start_value is None and due is None:
            return None
        if start_value is None:
            assert due is not None
            point = to_utc(due.dt, zone)
            return point, point
        start = to_utc(start_value.dt, zone)
        if due is not None:
            return start, max(start, to_utc(due.dt, zone))
        duration = component.get("DURATION")
        if duration is not None and isinstance(duration.dt, dt.timedelta):
            return start, start + max(duration.dt, dt.timedelta(0))
        return start, start
    if start_value is None:
        return None
    start = to_utc(start_value.dt, zone)
    end_value = component.get("DTEND")
    if end_value is not None:
        return start, max(start, to_utc(end_value.dt, zone))
    duration = component.get("DURATION")
    if duration is not None and isinstance(duration.dt, dt.timedelta):
        return start, start + max(duration.dt, dt.timedelta(0))
    if not isinstance(start_value.dt, dt.datetime):
        return start, to_utc(start_value.dt + dt.timedelta(days=1), zone)
    return start, start


_US = dt.timedelta(microseconds=1)
# The end of a VTODO span that only CREATED bounds (RFC 4791 §9.9: end > CREATED).
_FOREVER = dt.datetime(9999, 1, 1, tzinfo=UTC)


def range_span(component: Component, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime] | None:
    """RFC 4791 §9.9: the instance as a [s, e) that :func:`overlaps` (and the index's
    SQL, the same test) matches against a range exactly as the §9.9 table says, or None
    (a VTODO then matches every range, a VJOURNAL none).

    The VTODO rows mix strict and inclusive comparisons; times are whole microseconds,
    so an inclusive bound becomes a strict one a microsecond away: closed [a, b] is
    stored as (a - 1 µs, b + 1 µs), "start < DUE <= end" as (DUE - 1 µs, DUE)."""
    name = component.name
    if name == "VJOURNAL":
        value = component.get("DTSTART")
        if value is None:
            return None
        begin = to_utc(value.dt, zone)
        if isinstance(value.dt, dt.datetime):
            return begin, begin  # start <= DTSTART < end
        return begin, to_utc(value.dt + dt.timedelta(days=1), zone)  # the whole day
    if name != "VTODO":
        return instance_span(component, zone)

    def moment(prop: str) -> dt.datetime | None:
        # DTSTART and DUE are checked on PUT; a CREATED or COMPLETED that is not one
        # date (a client's garbage, or repeated) is left out rather than refused.
        value = getattr(component.get(prop), "dt", None)
        return to_utc(value, zone) if isinstance(value, dt.date) else None

    start, due = moment("DTSTART"), moment("DUE")
    duration = component.get("DURATION")
    if start is not None and due is not None:
        # (start < DUE OR start <= DTSTART) AND (end > DTSTART OR end >= DUE)
        return (start, due) if start < due else (due - _US, start + _US)
    if start is not None and duration is not None and isinstance(duration.dt, dt.timedelta):
        # (start <= DTSTART+DURATION) AND (end > DTSTART OR end >= DTSTART+DURATION)
        return _duration_row(start, start + max(duration.dt, dt.timedelta(0)))
    if start is not None:
        return start, start  # start <= DTSTART < end
    if due is not None:
        return due - _US, due  # start < DUE <= end
    completed, created = moment("COMPLETED"), moment("CREATED")
    if completed is not None and created is not None:
        # (start <= CREATED OR start <= COMPLETED) AND (end >= CREATED OR end >= COMPLETED)
        return min(completed, created) - _US, max(completed, created) + _US
    if completed is not None:
        return completed - _US, completed + _US  # start <= COMPLETED <= end
    if created is not None:
        return created, _FOREVER  # end > CREATED
    return None


def _duration_row(start: dt.datetime, finish: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    # (start <= DTSTART+DURATION) AND (end > DTSTART OR end >= DTSTART+DURATION)
    return (start, finish + _US) if finish > start else (start - _US, start + _US)


def _expanded_range_span(
    instance: Component, subs: list[Component], zone: dt.tzinfo
) -> tuple[dt.datetime, dt.datetime] | None:
    """:func:`range_span` of an instance made by recurring-ical-events, which turns a
    VTODO's DURATION into DUE: the §9.9 row is the one of the component it came from."""
    if instance.name == "VTODO" and "DTSTART" in instance and "DUE" in instance:
        recurrence = instance.get("RECURRENCE-ID")
        moment = to_utc(recurrence.dt, zone) if recurrence is not None else None
        source = next(
            (
                sub
                for sub in subs
                if "RECURRENCE-ID" in sub and to_utc(sub["RECURRENCE-ID"].dt, zone) == moment
            ),
            None,
        ) or next((sub for sub in subs if "RECURRENCE-ID" not in sub), None)
        if source is not None and "DURATION" in source and "DUE" not in source:
            start = to_utc(instance["DTSTART"].dt, zone)
            return _duration_row(start, max(start, to_utc(instance["DUE"].dt, zone)))
    return range_span(instance, zone)


def _is_busy(component: Component) -> bool:
    # RFC 4791 §7.10: free-busy comes from events only (not todos nor journals).
    if component.name != "VEVENT":
        return False
    if str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    return str(component.get("STATUS", "")).upper() != "CANCELLED"


def _recurs(calendar: icalendar.Calendar) -> bool:
    return any(
        "RRULE" in sub or "RDATE" in sub or "RECURRENCE-ID" in sub for sub in calendar.subcomponents
    )


def instances(
    calendar: icalendar.Calendar,
    component: str,
    start: dt.datetime,
    end: dt.datetime | None,
    zone: dt.tzinfo,
) -> Iterator[Component]:
    """Instances of the series (overrides applied, EXDATE removed) from ``start``, in
    order; all of them (or until ``end``)."""
    query = recurring_ical_events.of(calendar, components=[component])
    if end is not None:
        # between() is inclusive in ways that differ from §9.9; callers re-check spans.
        yield from query.between(start, end)
    else:
        yield from query.after(start)


Span = tuple[dt.datetime, dt.datetime, bool]


def _reference_spans(
    calendar: Component, component: str, zone: dt.tzinfo, horizon: dt.datetime
) -> tuple[list[Span], dt.datetime | None]:
    """The index's instances by recurring-ical-events (slow: ~5 ms an instance)."""
    spans: list[Span] = []
    first = min(
        (
            to_utc(sub["DTSTART"].dt, zone)
            for sub in calendar.subcomponents
            if sub.name == component and "DTSTART" in sub
        ),
        default=_EPOCH,
    )
    subs = [sub for sub in calendar.subcomponents if sub.name == component]
    for instance in instances(calendar, component, first - dt.timedelta(days=1), None, zone):
        span = _expanded_range_span(instance, subs, zone)
        if span is None:
            continue
        if span[0] > horizon or len(spans) >= MAX_INDEXED:
            return spans, span[0]
        spans.append((span[0], span[1], _is_busy(instance)))
    return spans, None


def _as_values(prop: Any) -> list[Any]:
    """The date values of RDATE/EXDATE (each property may repeat and hold a list)."""
    found: list[Any] = []
    for item in prop if isinstance(prop, list) else [prop]:
        found.extend(d.dt for d in item.dts)
    return found


def series_spans(
    calendar: Component, component: str, zone: dt.tzinfo, horizon: dt.datetime
) -> tuple[list[Span], dt.datetime | None]:
    """RFC 5545 §3.8.5.3 recurrence set (RRULE + RDATE - EXDATE, overrides by
    RECURRENCE-ID) with dateutil directly, for the index: (instances up to ``horizon``
    or :data:`MAX_INDEXED`, the start of the first one left out or None).

    About 100 times faster than recurring-ical-events (which builds a component per
    instance); anything unusual (RANGE=THISANDFUTURE, a series without a master, mixed
    date kinds) raises, and the caller falls back to the reference expansion.
    """
    from dateutil import rrule as dateutil_rrule  # type: ignore[import-untyped]

    subs = [sub for sub in calendar.subcomponents if sub.name == component]
    masters = [sub for sub in subs if "RECURRENCE-ID" not in sub]
    overrides = [sub for sub in subs if "RECURRENCE-ID" in sub]
    if len(masters) != 1:
        raise ValueError("no single master")
    master = masters[0]
    if any("RANGE" in sub["RECURRENCE-ID"].params for sub in overrides):
        raise ValueError("RANGE")
    start_value = master["DTSTART"].dt
    all_day = not isinstance(start_value, dt.datetime)
    if all_day:
        dtstart = dt.datetime(start_value.year, start_value.month, start_value.day)
    else:
        dtstart = start_value
    span = range_span(master, zone)
    if span is None:
        raise ValueError("no span")
    # A VTODO's §9.9 span may begin off DTSTART (by a microsecond, or at DUE).
    offset = span[0] - to_utc(start_value, zone)
    duration = span[1] - span[0]
    busy = _is_busy(master)

    def comparable(value: Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if (value.tzinfo is None) != (dtstart.tzinfo is None):
            raise ValueError("mixed floating and zoned values")
        result: dt.datetime = value
        return result

    rules = master.get("RRULE")
    recurrence = dateutil_rrule.rruleset()
    ends_before_start = False
    for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
        text = rule.to_ical().decode("ascii")
        recurrence.rrule(dateutil_rrule.rrulestr(text, dtstart=dtstart, ignoretz=False))
        rule_end = rule.get("UNTIL")
        if rule_end and to_utc(rule_end[0], zone) < to_utc(start_value, zone):
            ends_before_start = True
    # DTSTART is the first instance even when the rule does not produce it (RFC 5545
    # §3.8.5.3), except for a rule that ended before it: dateutil, libical and
    # recurring-ical-events then give no instance at all, and so does the index.
    if not ends_before_start:
        recurrence.rdate(dtstart)
    if "RDATE" in master:
        for value in _as_values(master["RDATE"]):
            if isinstance(value, tuple):
                raise ValueError("RDATE periods")
            recurrence.rdate(comparable(value))
    if "EXDATE" in master:
        for value in _as_values(master["EXDATE"]):
            recurrence.exdate(comparable(value))
    overridden = {to_utc(sub["RECURRENCE-ID"].dt, zone) for sub in overrides}
    spans: list[Span] = []
    until: dt.datetime | None = None
    for moment in recurrence:
        start = to_utc(moment, zone)
        if start > horizon or len(spans) >= MAX_INDEXED:
            until = start
            break
        if start in overridden:
            continue
        spans.append((start + offset, start + offset + duration, busy))
    for sub in overrides:
        override_span = range_span(sub, zone)
        if override_span is not None and (until is None or override_span[0] < until):
            spans.append((override_span[0], override_span[1], _is_busy(sub)))
    spans.sort()
    return spans, until


def index(
    data: str,
    *,
    timezone: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[ParsedCalendarObject, IndexedObject]:
    """Validate ``data`` and compute what the store keeps: columns and occurrence rows."""
    try:
        return _index(data, timezone=timezone, now=now)
    except CalendarError:
        raise
    except Exception as exc:  # icalendar raises many kinds on malformed input
        raise CalendarError("valid-calendar-data", f"invalid iCalendar: {exc}") from exc


def _index(
    data: str, *, timezone: str | None, now: dt.datetime | None
) -> tuple[ParsedCalendarObject, IndexedObject]:
    parsed = parse(data)
    zone = zone_of(timezone)
    calendar = parsed.calendar
    master = next(
        (
            sub
            for sub in calendar.subcomponents
            if sub.name == parsed.component and "RECURRENCE-ID" not in sub
        ),
        None,
    ) or next(sub for sub in calendar.subcomponents if sub.name == parsed.component)
    summary = str(master.get("SUMMARY", ""))[:1000]
    organizer = _address(master.get("ORGANIZER"))
    occurrences: list[Occurrence] = []
    indexed_until: int | None = None
    if parsed.component == "VFREEBUSY" or (
        parsed.component in ("VTODO",) and range_span(master, zone) is None
    ):
        # No time: a candidate for every time-range, decided by the rules on parse.
        spans: list[tuple[dt.datetime, dt.datetime, bool]] = []
        indexed_until = TIMELESS
    elif not _recurs(calendar):
        span = range_span(master, zone)
        spans = [] if span is None else [(span[0], span[1], _is_busy(master))]
    else:
        horizon = (now or dt.datetime.now(UTC)) + HORIZON
        try:
            spans, until = series_spans(calendar, parsed.component, zone, horizon)
        except CalendarError:
            raise
        except Exception:
            # Whatever the fast path does not handle, the reference expansion does.
            try:
                spans, until = _reference_spans(calendar, parsed.component, zone, horizon)
            except CalendarError:
                raise
            except Exception as exc:
                raise CalendarError(
                    "valid-calendar-data", f"recurrence does not expand: {exc}"
                ) from exc
        indexed_until = to_us(until) if until is not None else None
    occurrences = [Occurrence(to_us(s), to_us(e), busy) for s, e, busy in spans]
    first_start = min((o.start for o in occurrences), default=None)
    last_end = max((o.end for o in occurrences), default=None)
    if indexed_until is not None and indexed_until != TIMELESS and first_start is None:
        first_start = indexed_until
    item = IndexedObject(
        component=parsed.component,
        uid=parsed.uid,
        data=data,
        etag=etag_of(data),
        summary=summary,
        organizer=organizer,
        first_start=first_start,
        last_end=last_end if indexed_until is None else None,
        indexed_until=indexed_until,
        occurrences=tuple(occurrences),
    )
    return parsed, item


def _address(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()[:320]


def overlaps(span: tuple[dt.datetime, dt.datetime], start: dt.datetime, end: dt.datetime) -> bool:
    """RFC 4791 §9.9 overlap of an instance with [start, end)."""
    s, e = span
    if s == e:
        return start <= s < end
    return s < end and e > start


def matches_time_range(
    calendar: icalendar.Calendar,
    component: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    zone: dt.tzinfo,
) -> bool:
    """Whether any instance of the resource overlaps [start, end) (by expansion)."""
    lo = start or _EPOCH
    hi = end or dt.datetime(9999, 1, 1, tzinfo=UTC)
    subs = [s for s in calendar.subcomponents if s.name == component]
    if not subs:
        return False
    if not _recurs(calendar):
        span = range_span(subs[0], zone)
        if span is None:
            return component == "VTODO"
        return overlaps(span, lo, hi)
    for count, instance in enumerate(
        instances(calendar, component, lo - _longest(subs, zone), hi, zone)
    ):
        if count >= MAX_EXPANDED:
            raise CalendarError("max-instances", "too many instances in the range")
        span = _expanded_range_span(instance, subs, zone)
        if span is not None and overlaps(span, lo, hi):
            return True
    return False


def _longest(components: Iterable[Component], zone: dt.tzinfo) -> dt.timedelta:
    """How far before a range an instance may start and still overlap it."""
    longest = dt.timedelta(days=1)
    for component in components:
        span = instance_span(component, zone)
        if span is not None:
            longest = max(longest, span[1] - span[0] + dt.timedelta(days=1))
    return longest


def expand(
    calendar: icalendar.Calendar,
    component: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
) -> str:
    """RFC 4791 §9.6.5 ``expand``: every instance overlapping [start, end) as its own
    component with RECURRENCE-ID, times in UTC, no RRULE/RDATE/EXDATE, no VTIMEZONE."""
    out = icalendar.Calendar()
    for name, value in calendar.property_items(recursive=False):
        if name not in ("BEGIN", "END"):
            out.add(name, value)
    subs = [s for s in calendar.subcomponents if s.name == component]
    for count, instance in enumerate(
        instances(calendar, component, start - _longest(subs, zone), end, zone)
    ):
        if count >= MAX_EXPANDED:
            raise CalendarError("max-instances", "too many instances to expand")
        span = instance_span(instance, zone)
        ranged = _expanded_range_span(instance, subs, zone)  # §9.9 decides what is kept
        if span is None or ranged is None or not overlaps(ranged, start, end):
            continue
        copy = icalendar.cal.Component.from_ical(instance.to_ical())
        # The instance's own RECURRENCE-ID (an override keeps the original start).
        original = instance.get("RECURRENCE-ID")
        recurrence_id = to_utc(original.dt, zone) if original is not None else span[0]
        for name in ("RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND", "RECURRENCE-ID"):
            copy.pop(name, None)
        copy.add("DTSTART", span[0])
        if "DURATION" not in copy and "DUE" not in copy:
            copy.add("DTEND", span[1])
        copy.add("RECURRENCE-ID", recurrence_id)
        out.add_component(copy)
    return str(out.to_ical().decode("utf-8"))


def limit_recurrence_set(
    calendar: icalendar.Calendar,
    component: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
) -> str:
    """RFC 4791 §9.6.6: the master plus only the overrides overlapping [start, end)."""
    out = icalendar.Calendar()
    for name, value in calendar.property_items(recursive=False):
        if name not in ("BEGIN", "END"):
            out.add(name, value)
    for sub in calendar.subcomponents:
        if sub.name == component and "RECURRENCE-ID" in sub:
            span = range_span(sub, zone)
            if span is None or not overlaps(span, start, end):
                continue
        out.add_component(sub)
    return str(out.to_ical().decode("utf-8"))


def components_of(calendar: icalendar.Calendar, name: str) -> Iterable[Component]:
    return [sub for sub in calendar.subcomponents if sub.name == name]
