"""iCalendar (RFC 5545) <-> JSCalendar Event (RFC 8984), for JMAP Calendars.

Follows draft-ietf-calext-jscalendar-icalendar where it speaks:

- VEVENT -> Event: UID -> uid, SUMMARY -> title, DESCRIPTION -> description, DTSTART ->
  start (a LocalDateTime) + timeZone (its TZID; ``Etc/UTC`` for a UTC time, null when
  floating), DTEND/DURATION -> duration, VALUE=DATE -> showWithoutTime, STATUS ->
  status, TRANSP -> freeBusyStatus, CLASS -> privacy, LOCATION -> locations,
  CATEGORIES -> keywords, COLOR -> color, PRIORITY -> priority, SEQUENCE -> sequence,
  CREATED -> created, LAST-MODIFIED (else DTSTAMP) -> updated.
- RRULE -> recurrenceRules (RFC 8984 §4.3.3 RecurrenceRule); RDATE -> an empty
  override; EXDATE -> ``{"excluded": true}``; a VEVENT with RECURRENCE-ID -> a
  PatchObject (§4.3.5) of what differs from the master, keyed by the recurrence id in
  the master's time zone.
- ORGANIZER/ATTENDEE -> participants (§4.4.6) with roles (ROLE=CHAIR -> chair,
  OPT-PARTICIPANT -> optional, NON-PARTICIPANT -> informational, ORGANIZER -> owner),
  participationStatus (PARTSTAT), expectReply (RSVP), kind (CUTYPE), name (CN), email,
  sendTo.imip; the organizer's address is also the event's replyTo.imip.
- VALARM -> alerts (§4.5.2) with OffsetTrigger (RELATED=END -> relativeTo "end") or
  AbsoluteTrigger, action display/email, acknowledged.

Deliberate limits: at most one location (iCalendar has one LOCATION); an override that
adds an instance (RDATE) with changed properties is written as an RDATE only when the
series has no rule or already had that RDATE; virtualLocations, links, localizations,
relatedTo are not mapped.

Nothing mapped is lost the other way: :func:`to_icalendar` writes onto the stored
object (``base``) and replaces only the properties this module maps, so an update made
through JMAP keeps every other property, parameter (of ATTENDEE, by address), alarm
property (by alarm UID) and component a CalDAV client put there.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

UTC_ZONE = "Etc/UTC"
_UTC_NAMES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"}

# iCalendar properties of a VEVENT written from JSCalendar (everything else is kept).
MAPPED = frozenset(
    {
        "UID",
        "SUMMARY",
        "DESCRIPTION",
        "DTSTART",
        "DTEND",
        "DURATION",
        "STATUS",
        "TRANSP",
        "CLASS",
        "LOCATION",
        "CATEGORIES",
        "RRULE",
        "EXDATE",
        "RDATE",
        "ORGANIZER",
        "ATTENDEE",
        "PRIORITY",
        "SEQUENCE",
        "COLOR",
        "CREATED",
        "LAST-MODIFIED",
        "DTSTAMP",
        "RECURRENCE-ID",
    }
)

# Event properties this module reads and writes (RFC 8984 §5.1 and the common ones).
EVENT_PROPERTIES = (
    "@type",
    "uid",
    "title",
    "description",
    "start",
    "timeZone",
    "duration",
    "showWithoutTime",
    "status",
    "freeBusyStatus",
    "privacy",
    "locations",
    "keywords",
    "color",
    "priority",
    "sequence",
    "created",
    "updated",
    "recurrenceRules",
    "recurrenceOverrides",
    "participants",
    "replyTo",
    "alerts",
)
# What an override's PatchObject may not change (RFC 8984 §4.3.5).
_NOT_PATCHABLE = ("@type", "uid", "recurrenceRules", "recurrenceOverrides", "created")
STATUSES = ("confirmed", "tentative", "cancelled")
FREE_BUSY = ("free", "busy")
PRIVACY = {"public": "PUBLIC", "private": "PRIVATE", "secret": "CONFIDENTIAL"}
_PRIVACY_OF = {v: k for k, v in PRIVACY.items()}
PARTICIPATION = ("needs-action", "accepted", "declined", "tentative", "delegated")
KINDS = {"individual": "INDIVIDUAL", "group": "GROUP", "location": "ROOM", "resource": "RESOURCE"}
_KIND_OF = {v: k for k, v in KINDS.items()}
FREQUENCIES = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly")
DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")

_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$")
_UTC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$")
_DURATION = re.compile(
    r"^([+-]?)P(?!$)(?:(\d{1,6})W)?(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,6})S)?)?$"
)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class JSCalendarError(Exception):
    """An Event that cannot be written: ``path`` names the property at fault."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# -- values ------------------------------------------------------------------------------


def format_local(value: dt.datetime | dt.date) -> str:
    """RFC 8984 §1.4.4 LocalDateTime."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=None, microsecond=0).isoformat()


def parse_local(value: object, path: str) -> dt.datetime:
    if not isinstance(value, str) or not _LOCAL.match(value):
        raise JSCalendarError(path, f"{path} must be a LocalDateTime (YYYY-MM-DDTHH:MM:SS)")
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise JSCalendarError(path, f"{path} is not a valid date and time") from None


def format_utc(value: dt.datetime) -> str:
    """RFC 8984 §1.4.3 UTCDateTime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_utc(value: object, path: str) -> dt.datetime:
    if not isinstance(value, str) or not _UTC.match(value):
        raise JSCalendarError(path, f"{path} must be a UTCDateTime (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        return dt.datetime.fromisoformat(value[:19]).replace(tzinfo=dt.UTC)
    except ValueError:
        raise JSCalendarError(path, f"{path} is not a valid date and time") from None


def format_duration(value: dt.timedelta) -> str:
    """RFC 8984 §1.4.6 Duration / §1.4.7 SignedDuration, in one canonical spelling."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    text = "P"
    if days:
        text += f"{days}D"
    if seconds or not days:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        text += "T"
        if hours:
            text += f"{hours}H"
        if minutes:
            text += f"{minutes}M"
        if secs or not (hours or minutes):
            text += f"{secs}S"
    return sign + text


def parse_duration(value: object, path: str, *, signed: bool = False) -> dt.timedelta:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or (match.group(1) and not signed):
        kind = "SignedDuration" if signed else "Duration"
        raise JSCalendarError(path, f"{path} must be a {kind} (e.g. PT1H30M)")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    delta = dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    return -delta if match.group(1) == "-" else delta


def valid_time_zone(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > 100:
        return False
    if name in _UTC_NAMES:
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def participant_id(address: str) -> str:
    """A stable participant id for a calendar user address (so that the id of one
    attendee is the same in every read and across overrides)."""
    return hashlib.sha256(_address_key(address).encode("utf-8")).hexdigest()[:12]


def _address_key(address: str) -> str:
    text = address.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower()


# -- iCalendar -> JSCalendar -----------------------------------------------------------------


def _tzid(prop: Any) -> str | None:
    """The time zone name of a DATE-TIME property (None: floating or a DATE)."""
    value = prop.dt
    if not isinstance(value, dt.datetime):
        return None
    tzid = prop.params.get("TZID")
    if tzid:
        return str(tzid)
    if value.tzinfo is None:
        return None
    if value.utcoffset() == dt.timedelta(0) and str(value.tzinfo) in ("UTC", "Etc/UTC", "GMT"):
        return UTC_ZONE
    key = getattr(value.tzinfo, "key", None)
    return str(key) if key else UTC_ZONE


def _in_zone(value: dt.datetime | dt.date, zone: dt.tzinfo | None) -> dt.datetime | dt.date:
    """``value`` as a wall time in ``zone`` (aware values converted, others as they are)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None and zone is not None:
        return value.astimezone(zone)
    return value


def _zone_of_value(prop: Any) -> dt.tzinfo | None:
    value = prop.dt
    if isinstance(value, dt.datetime):
        return value.tzinfo
    return None


def _values(component: Any, name: str) -> list[Any]:
    found = component.get(name)
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    return str(value)


def _fields(component: Any, zone: dt.tzinfo | None) -> dict[str, Any]:
    """The Event properties of one VEVENT (master or override), defaults included."""
    event: dict[str, Any] = {
        "title": _text(component, "SUMMARY") or "",
        "description": _text(component, "DESCRIPTION") or "",
        "showWithoutTime": False,
        "duration": "PT0S",
        "status": (_text(component, "STATUS") or "CONFIRMED").lower(),
        "freeBusyStatus": "free"
        if (_text(component, "TRANSP") or "").upper() == "TRANSPARENT"
        else "busy",
        "privacy": _PRIVACY_OF.get((_text(component, "CLASS") or "PUBLIC").upper(), "public"),
        "locations": None,
        "keywords": None,
        "participants": None,
        "replyTo": None,
        "alerts": None,
        "priority": 0,
        "sequence": 0,
        "color": None,
    }
    if event["status"] not in STATUSES:
        event["status"] = "confirmed"
    start_prop = component.get("DTSTART")
    if start_prop is not None:
        start = start_prop.dt
        if not isinstance(start, dt.datetime):
            event["showWithoutTime"] = True
        event["start"] = format_local(start)
        event["timeZone"] = _tzid(start_prop)
        end_prop = component.get("DTEND")
        if end_prop is not None:
            end = end_prop.dt
            if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
                if start.tzinfo is not None and end.tzinfo is not None:
                    end = end.astimezone(start.tzinfo)
                length = end.replace(tzinfo=None) - start.replace(tzinfo=None)
            elif not isinstance(start, dt.datetime) and not isinstance(end, dt.datetime):
                length = end - start
            else:
                length = dt.timedelta(0)
            event["duration"] = format_duration(max(length, dt.timedelta(0)))
        elif component.get("DURATION") is not None:
            length = component["DURATION"].dt
            if isinstance(length, dt.timedelta):
                event["duration"] = format_duration(max(length, dt.timedelta(0)))
        elif event["showWithoutTime"]:
            event["duration"] = "P1D"  # RFC 5545 §3.6.1: a DATE start lasts one day
    else:
        event["start"] = None
        event["timeZone"] = None
    location = _text(component, "LOCATION")
    if location is not None:
        prop = component["LOCATION"]
        location_id = str(prop.params.get("X-JMAP-ID") or "1")
        event["locations"] = {
            location_id if _ID.match(location_id) else "1": {"@type": "Location", "name": location}
        }
    keywords: dict[str, bool] = {}
    for prop in _values(component, "CATEGORIES"):
        for word in getattr(prop, "cats", [prop]):
            if str(word):
                keywords[str(word)] = True
    if keywords:
        event["keywords"] = keywords
    color = _text(component, "COLOR")
    if color:
        event["color"] = color
    for name, key in (("PRIORITY", "priority"), ("SEQUENCE", "sequence")):
        value = component.get(name)
        if value is not None:
            with contextlib.suppress(TypeError, ValueError):
                event[key] = int(value)
    event["participants"], event["replyTo"] = _participants(component)
    event["alerts"] = _alerts(component)
    for name, key in (("CREATED", "created"), ("LAST-MODIFIED", "updated")):
        value = component.get(name)
        if value is not None and isinstance(value.dt, dt.datetime):
            event[key] = format_utc(value.dt)
    if "updated" not in event and component.get("DTSTAMP") is not None:
        stamp = component["DTSTAMP"].dt
        if isinstance(stamp, dt.datetime):
            event["updated"] = format_utc(stamp)
    return event


def _participants(component: Any) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    participants: dict[str, dict[str, Any]] = {}
    reply_to = None
    organizer = component.get("ORGANIZER")
    if isinstance(organizer, list):
        organizer = organizer[0]
    if organizer is not None and str(organizer).strip():
        address = str(organizer).strip()
        reply_to = {"imip": _mailto(address)}
        person = _participant_base(address, organizer.params)
        person["roles"] = {"owner": True}
        participants[participant_id(address)] = person
    for attendee in _values(component, "ATTENDEE"):
        address = str(attendee).strip()
        if not address:
            continue
        params = attendee.params
        key = participant_id(address)
        person = participants.get(key) or _participant_base(address, params)
        roles = dict(person.get("roles") or {})
        role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
        if role == "CHAIR":
            roles.update({"attendee": True, "chair": True})
        elif role == "OPT-PARTICIPANT":
            roles["optional"] = True
        elif role == "NON-PARTICIPANT":
            roles["informational"] = True
        else:
            roles["attendee"] = True
        person["roles"] = roles
        person["participationStatus"] = str(params.get("PARTSTAT", "NEEDS-ACTION")).lower()
        if person["participationStatus"] not in PARTICIPATION:
            person["participationStatus"] = "needs-action"
        person["expectReply"] = str(params.get("RSVP", "FALSE")).upper() == "TRUE"
        if "CN" in params and "name" not in person:
            person["name"] = str(params["CN"])
        kind = _KIND_OF.get(str(params.get("CUTYPE", "")).upper())
        if kind:
            person["kind"] = kind
        participants[key] = person
    return (participants or None), reply_to


def _participant_base(address: str, params: Any) -> dict[str, Any]:
    person: dict[str, Any] = {"@type": "Participant", "sendTo": {"imip": _mailto(address)}}
    if address.lower().startswith("mailto:"):
        person["email"] = address[7:]
    if "CN" in params:
        person["name"] = str(params["CN"])
    return person


def _mailto(address: str) -> str:
    if address.lower().startswith("mailto:"):
        return "mailto:" + address[7:]
    return address


def _alerts(component: Any) -> dict[str, Any] | None:
    alerts: dict[str, Any] = {}
    for index, alarm in enumerate(
        (s for s in component.subcomponents if s.name == "VALARM"), start=1
    ):
        trigger = alarm.get("TRIGGER")
        if trigger is None:
            continue
        uid = str(alarm.get("UID", ""))
        alert_id = uid if _ID.match(uid) else str(index)
        value = trigger.dt
        alert: dict[str, Any] = {"@type": "Alert"}
        if isinstance(value, dt.timedelta):
            alert["trigger"] = {"@type": "OffsetTrigger", "offset": format_duration(value)}
            if str(trigger.params.get("RELATED", "START")).upper() == "END":
                alert["trigger"]["relativeTo"] = "end"
            else:
                alert["trigger"]["relativeTo"] = "start"
        elif isinstance(value, dt.datetime):
            alert["trigger"] = {"@type": "AbsoluteTrigger", "when": format_utc(value)}
        else:
            continue
        action = str(alarm.get("ACTION", "DISPLAY")).upper()
        alert["action"] = "email" if action == "EMAIL" else "display"
        acknowledged = alarm.get("ACKNOWLEDGED")
        if acknowledged is not None and isinstance(acknowledged.dt, dt.datetime):
            alert["acknowledged"] = format_utc(acknowledged.dt)
        alerts[alert_id] = alert
    return alerts or None


def _rule(recur: Any, zone: dt.tzinfo | None, is_date: bool) -> dict[str, Any]:
    """RFC 8984 §4.3.3 RecurrenceRule from an RRULE value (vRecur)."""
    rule: dict[str, Any] = {"@type": "RecurrenceRule"}
    parts = {str(k).upper(): v if isinstance(v, list) else [v] for k, v in recur.items()}
    rule["frequency"] = str(parts.get("FREQ", ["DAILY"])[0]).lower()
    if "INTERVAL" in parts and int(parts["INTERVAL"][0]) != 1:
        rule["interval"] = int(parts["INTERVAL"][0])
    if "RSCALE" in parts:
        rule["rscale"] = str(parts["RSCALE"][0]).lower()
    if "SKIP" in parts:
        rule["skip"] = str(parts["SKIP"][0]).lower()
    if "WKST" in parts:
        rule["firstDayOfWeek"] = str(parts["WKST"][0]).lower()
    if "BYDAY" in parts:
        days = []
        for item in parts["BYDAY"]:
            text = str(item).upper()
            match = re.match(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$", text)
            if match is None:
                continue
            day: dict[str, Any] = {"@type": "NDay", "day": match.group(2).lower()}
            if match.group(1):
                day["nthOfPeriod"] = int(match.group(1))
            days.append(day)
        rule["byDay"] = days
    for name, key in (
        ("BYMONTHDAY", "byMonthDay"),
        ("BYYEARDAY", "byYearDay"),
        ("BYWEEKNO", "byWeekNo"),
        ("BYHOUR", "byHour"),
        ("BYMINUTE", "byMinute"),
        ("BYSECOND", "bySecond"),
        ("BYSETPOS", "bySetPosition"),
    ):
        if name in parts:
            rule[key] = [int(v) for v in parts[name]]
    if "BYMONTH" in parts:
        rule["byMonth"] = [str(v) for v in parts["BYMONTH"]]
    if "COUNT" in parts:
        rule["count"] = int(parts["COUNT"][0])
    if "UNTIL" in parts:
        until = parts["UNTIL"][0]
        if isinstance(until, dt.datetime) and is_date:
            until = until.date()
        rule["until"] = format_local(_in_zone(until, zone))
    return rule


def master_of(calendar: icalendar.Calendar) -> Any | None:
    """The VEVENT without RECURRENCE-ID (None when the object has none)."""
    for sub in calendar.subcomponents:
        if sub.name == "VEVENT" and "RECURRENCE-ID" not in sub:
            return sub
    return None


def to_jscalendar(calendar: icalendar.Calendar) -> dict[str, Any]:
    """The Event of a stored calendar object (its VEVENT master and overrides)."""
    events = [s for s in calendar.subcomponents if s.name == "VEVENT"]
    if not events:
        raise JSCalendarError("", "no VEVENT in the calendar object")
    master = master_of(calendar)
    overrides = [s for s in events if "RECURRENCE-ID" in s]
    if master is None:
        # Only overrides (an invitation to some instances): the first stands for the event.
        master = overrides.pop(0)
    start_prop = master.get("DTSTART")
    zone = _zone_of_value(start_prop) if start_prop is not None else None
    is_date = start_prop is not None and not isinstance(start_prop.dt, dt.datetime)
    event: dict[str, Any] = {"@type": "Event", "uid": str(master.get("UID", ""))}
    base = _fields(master, zone)
    event.update(base)
    prod_id = calendar.get("PRODID")
    if prod_id is not None:
        event["prodId"] = str(prod_id)
    rules = [_rule(r, zone, is_date) for r in _values(master, "RRULE")]
    event["recurrenceRules"] = rules or None
    overriding: dict[str, Any] = {}
    for prop in _values(master, "RDATE"):
        for item in getattr(prop, "dts", []):
            value = item.dt
            if isinstance(value, tuple):  # PERIOD: its start
                value = value[0]
            overriding[format_local(_in_zone(value, zone))] = {}
    for sub in overrides:
        rid_prop: Any = sub["RECURRENCE-ID"]
        key = format_local(_in_zone(rid_prop.dt, zone))
        # The instance's own start is the recurrence id unless the override moves it.
        patch = _diff({**base, "start": key}, _fields(sub, zone))
        overriding[key] = {**overriding.get(key, {}), **patch}
    for prop in _values(master, "EXDATE"):
        for item in getattr(prop, "dts", []):
            overriding[format_local(_in_zone(item.dt, zone))] = {"excluded": True}
    event["recurrenceOverrides"] = overriding or None
    return event


def _diff(base: dict[str, Any], changed: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A PatchObject (RFC 8984 §1.4.9) that turns ``base`` into ``changed``."""
    patch: dict[str, Any] = {}
    for key in sorted(base.keys() | changed.keys()):
        if key in ("created", "updated") and not prefix:
            continue
        path = f"{prefix}{_escape(key)}"
        old, new = base.get(key), changed.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and prefix.count("/") < 2:
            patch.update(_diff(old, new, path + "/"))
        else:
            patch[path] = new
    return patch


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def apply_patch(obj: dict[str, Any], patch: dict[str, Any], path: str) -> dict[str, Any]:
    """RFC 8984 §1.4.9: ``obj`` with the PatchObject applied (a new object);
    JSCalendarError when a pointer goes through something that is not an object."""
    result = copy.deepcopy(obj)
    for pointer, value in patch.items():
        if not isinstance(pointer, str) or not pointer or pointer.startswith("/"):
            raise JSCalendarError(path, f"invalid patch pointer {pointer!r}")
        parts = [_unescape(p) for p in pointer.split("/")]
        target: Any = result
        for part in parts[:-1]:
            if target.get(part) is None:
                target[part] = {}
            target = target[part]
            if not isinstance(target, dict):
                raise JSCalendarError(path, f"patch pointer {pointer!r} goes through a value")
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return result


def instance(event: dict[str, Any], recurrence_id: str) -> dict[str, Any]:
    """One instance of a recurring Event (draft-ietf-jmap-calendars expanded
    instances): the override applied, recurrenceId set, no rules or overrides."""
    patch = (event.get("recurrenceOverrides") or {}).get(recurrence_id) or {}
    base = {
        k: v
        for k, v in event.items()
        if k not in ("recurrenceRules", "recurrenceOverrides", "excludedRecurrenceRules")
    }
    base["start"] = recurrence_id
    patch = {k: v for k, v in patch.items() if k != "excluded"}
    result = apply_patch(base, patch, "recurrenceOverrides")
    result["recurrenceId"] = recurrence_id
    result["recurrenceIdTimeZone"] = event.get("timeZone")
    result["recurrenceRules"] = None
    result["recurrenceOverrides"] = None
    return result


# -- JSCalendar -> iCalendar -------------------------------------------------------------------


def check(event: dict[str, Any], *, allowed: Iterable[str] = (), zones: Iterable[str] = ()) -> None:
    """Types and values of a whole Event (RFC 8984 §4-§5); JSCalendarError. ``zones``:
    TZIDs the stored object defines itself (Outlook's "W. Europe Standard Time")."""
    zones = frozenset(zones)
    known = set(EVENT_PROPERTIES) | {"prodId", "method"} | set(allowed)
    for key in event:
        if key not in known:
            raise JSCalendarError(key, f"unknown or unsupported property {key!r}")
    if event.get("@type", "Event") != "Event":
        raise JSCalendarError("@type", "@type must be Event")
    uid = event.get("uid")
    if not isinstance(uid, str) or not uid.strip() or len(uid) > 1000 or _control(uid):
        raise JSCalendarError("uid", "uid must be a non-empty string")
    for key in ("title", "description", "color"):
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            raise JSCalendarError(key, f"{key} must be a string")
    parse_local(event.get("start"), "start")
    zone = event.get("timeZone")
    if zone is not None and not (
        valid_time_zone(zone) or (isinstance(zone, str) and zone in zones)
    ):
        raise JSCalendarError("timeZone", f"unknown time zone {zone!r}")
    parse_duration(event.get("duration", "PT0S"), "duration")
    if not isinstance(event.get("showWithoutTime", False), bool):
        raise JSCalendarError("showWithoutTime", "showWithoutTime must be a boolean")
    _choice(event, "status", STATUSES)
    _choice(event, "freeBusyStatus", FREE_BUSY)
    _choice(event, "privacy", tuple(PRIVACY))
    for key, top in (("priority", 9), ("sequence", 2**31 - 1)):
        value = event.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise JSCalendarError(key, f"{key} must be an integer from 0 to {top}")
    for key in ("created", "updated"):
        if event.get(key) is not None:
            parse_utc(event[key], key)
    keywords = event.get("keywords")
    if keywords is not None and (
        not isinstance(keywords, dict)
        or any(v is not True or not k or _control(k) for k, v in keywords.items())
    ):
        raise JSCalendarError("keywords", "keywords must map strings to true")
    _check_locations(event.get("locations"))
    _check_participants(event.get("participants"))
    _check_alerts(event.get("alerts"))
    rules = event.get("recurrenceRules")
    if rules is not None:
        if not isinstance(rules, list):
            raise JSCalendarError("recurrenceRules", "recurrenceRules must be an array")
        for index, rule in enumerate(rules):
            _check_rule(rule, f"recurrenceRules/{index}")
    overrides = event.get("recurrenceOverrides")
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise JSCalendarError("recurrenceOverrides", "recurrenceOverrides must be an object")
        for key, patch in overrides.items():
            path = f"recurrenceOverrides/{key}"
            parse_local(key, path)
            if not isinstance(patch, dict):
                raise JSCalendarError(path, "an override must be a PatchObject")
            for pointer in patch:
                if pointer.split("/")[0] in _NOT_PATCHABLE:
                    raise JSCalendarError(path, f"an override cannot patch {pointer!r}")
            if patch.get("excluded") not in (None, True, False):
                raise JSCalendarError(path, "excluded must be a boolean")
            if not patch.get("excluded"):
                body = {k: v for k, v in event.items() if k not in _NOT_PATCHABLE}
                body["start"] = key
                patched = apply_patch(
                    body, {k: v for k, v in patch.items() if k != "excluded"}, path
                )
                try:
                    check({**patched, "uid": uid}, zones=zones)
                except JSCalendarError as exc:
                    raise JSCalendarError(path, f"{path}: {exc.message}") from None


def _control(text: str) -> bool:
    return any((ord(c) < 0x20 and c not in "\t\n") or c == "\x7f" for c in text)


def _choice(event: dict[str, Any], key: str, values: tuple[str, ...]) -> None:
    value = event.get(key)
    if value is not None and value not in values:
        raise JSCalendarError(key, f"{key} must be one of {', '.join(values)}")


def _check_locations(locations: object) -> None:
    if locations is None:
        return
    if not isinstance(locations, dict) or len(locations) > 1:
        raise JSCalendarError("locations", "locations must be an object of at most one Location")
    for key, location in locations.items():
        if not _ID.match(key) or not isinstance(location, dict):
            raise JSCalendarError("locations", "each Location is an object under an Id")
        if not isinstance(location.get("name", ""), str) or set(location) - {"@type", "name"}:
            raise JSCalendarError(f"locations/{key}", "a Location has a name only here")


def _check_participants(participants: object) -> None:
    if participants is None:
        return
    if not isinstance(participants, dict):
        raise JSCalendarError("participants", "participants must be an object")
    owners = 0
    for key, person in participants.items():
        path = f"participants/{key}"
        if not _ID.match(key) or not isinstance(person, dict):
            raise JSCalendarError(path, "each Participant is an object under an Id")
        if _address_of(person) is None:
            raise JSCalendarError(path, "a participant needs sendTo.imip or email")
        roles = person.get("roles", {"attendee": True})
        if not isinstance(roles, dict) or not roles or any(v is not True for v in roles.values()):
            raise JSCalendarError(f"{path}/roles", "roles must map role names to true")
        owners += bool(roles.get("owner"))
        status = person.get("participationStatus", "needs-action")
        if status not in PARTICIPATION:
            raise JSCalendarError(f"{path}/participationStatus", "unknown participationStatus")
        if not isinstance(person.get("expectReply", False), bool):
            raise JSCalendarError(f"{path}/expectReply", "expectReply must be a boolean")
        kind = person.get("kind")
        if kind is not None and (not isinstance(kind, str) or kind not in KINDS):
            raise JSCalendarError(f"{path}/kind", "unknown participant kind")
        if not isinstance(person.get("name", ""), str):
            raise JSCalendarError(f"{path}/name", "name must be a string")
    if owners > 1:
        raise JSCalendarError("participants", "at most one participant has the owner role")


def _address_of(person: dict[str, Any]) -> str | None:
    send_to = person.get("sendTo")
    if isinstance(send_to, dict) and isinstance(send_to.get("imip"), str):
        text = str(send_to["imip"]).strip()
        if text.lower().startswith("mailto:") and "@" in text and not _control(text):
            return "mailto:" + text[7:]
        return None
    email = person.get("email")
    if isinstance(email, str) and "@" in email and not _control(email) and ":" not in email:
        return "mailto:" + email.strip()
    return None


def _check_alerts(alerts: object) -> None:
    if alerts is None:
        return
    if not isinstance(alerts, dict):
        raise JSCalendarError("alerts", "alerts must be an object")
    for key, alert in alerts.items():
        path = f"alerts/{key}"
        if not _ID.match(key) or not isinstance(alert, dict):
            raise JSCalendarError(path, "each Alert is an object under an Id")
        trigger = alert.get("trigger")
        if not isinstance(trigger, dict):
            raise JSCalendarError(f"{path}/trigger", "an Alert needs a trigger")
        kind = trigger.get("@type")
        if kind == "OffsetTrigger":
            parse_duration(trigger.get("offset"), f"{path}/trigger/offset", signed=True)
            if trigger.get("relativeTo", "start") not in ("start", "end"):
                raise JSCalendarError(f"{path}/trigger/relativeTo", "relativeTo is start or end")
        elif kind == "AbsoluteTrigger":
            parse_utc(trigger.get("when"), f"{path}/trigger/when")
        else:
            raise JSCalendarError(
                f"{path}/trigger", "trigger is an OffsetTrigger or AbsoluteTrigger"
            )
        if alert.get("action", "display") not in ("display", "email"):
            raise JSCalendarError(f"{path}/action", "action is display or email")
        if alert.get("acknowledged") is not None:
            parse_utc(alert["acknowledged"], f"{path}/acknowledged")


def _check_rule(rule: object, path: str) -> None:
    if not isinstance(rule, dict):
        raise JSCalendarError(path, "a RecurrenceRule must be an object")
    if rule.get("frequency") not in FREQUENCIES:
        raise JSCalendarError(f"{path}/frequency", "unknown frequency")
    known = {
        "@type",
        "frequency",
        "interval",
        "rscale",
        "skip",
        "firstDayOfWeek",
        "byDay",
        "byMonthDay",
        "byMonth",
        "byYearDay",
        "byWeekNo",
        "byHour",
        "byMinute",
        "bySecond",
        "bySetPosition",
        "count",
        "until",
    }
    unknown = set(rule) - known
    if unknown:
        raise JSCalendarError(path, f"unknown RecurrenceRule members {sorted(unknown)}")
    for key in ("interval", "count"):
        value = rule.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise JSCalendarError(f"{path}/{key}", f"{key} must be a positive integer")
    if "count" in rule and "until" in rule:
        raise JSCalendarError(path, "count and until cannot both be set")
    if rule.get("until") is not None:
        parse_local(rule["until"], f"{path}/until")
    if rule.get("firstDayOfWeek", "mo") not in DAYS:
        raise JSCalendarError(f"{path}/firstDayOfWeek", "unknown day")
    if rule.get("rscale", "gregorian") != "gregorian":
        raise JSCalendarError(f"{path}/rscale", "only the gregorian rscale is supported")
    if rule.get("skip", "omit") not in ("omit", "backward", "forward"):
        raise JSCalendarError(f"{path}/skip", "skip is omit, backward or forward")
    days = rule.get("byDay", [])
    if not isinstance(days, list) or any(
        not isinstance(d, dict)
        or d.get("day") not in DAYS
        or (
            d.get("nthOfPeriod") is not None
            and (
                isinstance(d["nthOfPeriod"], bool)
                or not isinstance(d["nthOfPeriod"], int)
                or not 1 <= abs(d["nthOfPeriod"]) <= 53
            )
        )
        for d in days
    ):
        raise JSCalendarError(f"{path}/byDay", "byDay is an array of NDay")
    limits = {
        "byMonthDay": (1, 31),
        "byYearDay": (1, 366),
        "byWeekNo": (1, 53),
        "byHour": (0, 23),
        "byMinute": (0, 59),
        "bySecond": (0, 60),
        "bySetPosition": (1, 366),
    }
    for key, (low, high) in limits.items():
        values = rule.get(key, [])
        signed = key in ("byMonthDay", "byYearDay", "byWeekNo", "bySetPosition")
        if not isinstance(values, list) or any(
            isinstance(v, bool)
            or not isinstance(v, int)
            or not low <= (abs(v) if signed else v) <= high
            for v in values
        ):
            raise JSCalendarError(f"{path}/{key}", f"{key} must be integers in range")
    months = rule.get("byMonth", [])
    if not isinstance(months, list) or any(
        not isinstance(m, str) or not re.match(r"^(?:[1-9]|1[0-2])L?$", m) for m in months
    ):
        raise JSCalendarError(f"{path}/byMonth", "byMonth holds month numbers as strings")


def _zone(name: str | None, base: icalendar.Calendar | None) -> dt.tzinfo | None:
    if name is None:
        return None
    if name in _UTC_NAMES:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    if base is not None:
        for tz in base.walk("VTIMEZONE"):
            if str(tz.get("TZID", "")) == name:
                return tz.to_tz()  # type: ignore[attr-defined,no-any-return]
    raise JSCalendarError("timeZone", f"unknown time zone {name!r}")


def _date_value(local: dt.datetime, zone: dt.tzinfo | None, is_date: bool) -> dt.datetime | dt.date:
    if is_date:
        return local.date()
    if zone is None:
        return local
    return local.replace(tzinfo=zone)


def _add_date(
    component: Any, name: str, value: dt.datetime | dt.date, zone_name: str | None
) -> None:
    if isinstance(value, dt.datetime) and value.tzinfo is not None and zone_name not in _UTC_NAMES:
        assert zone_name is not None
        component.add(name, value, parameters={"TZID": zone_name})
    elif isinstance(value, dt.datetime) and value.tzinfo is not None:
        component.add(name, value.astimezone(dt.UTC))
    else:
        component.add(name, value)


def _rrule(rule: dict[str, Any], zone: dt.tzinfo | None, is_date: bool) -> icalendar.vRecur:
    parts = [f"FREQ={rule['frequency'].upper()}"]
    if rule.get("interval", 1) != 1:
        parts.append(f"INTERVAL={rule['interval']}")
    if "rscale" in rule:
        parts.append(f"RSCALE={rule['rscale'].upper()}")
    if "skip" in rule:
        parts.append(f"SKIP={rule['skip'].upper()}")
    if "firstDayOfWeek" in rule:
        parts.append(f"WKST={rule['firstDayOfWeek'].upper()}")
    if rule.get("byDay"):
        parts.append(
            "BYDAY="
            + ",".join(f"{d.get('nthOfPeriod') or ''}{d['day'].upper()}" for d in rule["byDay"])
        )
    for key, name in (
        ("byMonthDay", "BYMONTHDAY"),
        ("byMonth", "BYMONTH"),
        ("byYearDay", "BYYEARDAY"),
        ("byWeekNo", "BYWEEKNO"),
        ("byHour", "BYHOUR"),
        ("byMinute", "BYMINUTE"),
        ("bySecond", "BYSECOND"),
        ("bySetPosition", "BYSETPOS"),
    ):
        if rule.get(key):
            parts.append(f"{name}=" + ",".join(str(v) for v in rule[key]))
    if "count" in rule:
        parts.append(f"COUNT={rule['count']}")
    if rule.get("until") is not None:
        until = parse_local(rule["until"], "until")
        if is_date:
            parts.append("UNTIL=" + until.strftime("%Y%m%d"))
        elif zone is None:
            parts.append("UNTIL=" + until.strftime("%Y%m%dT%H%M%S"))
        else:
            # RFC 5545 §3.3.10: with a zoned DTSTART, UNTIL is in UTC.
            utc = until.replace(tzinfo=zone).astimezone(dt.UTC)
            parts.append("UNTIL=" + utc.strftime("%Y%m%dT%H%M%SZ"))
    recur: icalendar.vRecur = icalendar.vRecur.from_ical(";".join(parts))
    return recur


def _write_fields(
    component: Any,
    event: dict[str, Any],
    base_component: Any | None,
    calendar: icalendar.Calendar | None,
    *,
    keep_duration: bool,
) -> tuple[dt.tzinfo | None, bool, str | None]:
    """Write the mapped properties of ``event`` onto ``component`` (which has none of
    them); returns (start zone, is a DATE, zone name)."""
    start = parse_local(event["start"], "start")
    duration = parse_duration(event.get("duration") or "PT0S", "duration")
    zone_name = event.get("timeZone")
    zone = _zone(zone_name, calendar)
    is_date = (
        bool(event.get("showWithoutTime"))
        and start.time() == dt.time(0)
        and (duration.seconds == 0 and duration.microseconds == 0)
    )
    begin = _date_value(start, zone, is_date)
    _add_date(component, "DTSTART", begin, zone_name)
    if keep_duration:
        component.add("DURATION", duration)
    elif is_date:
        if duration.days >= 1:
            component.add("DTEND", start.date() + dt.timedelta(days=duration.days))
    elif duration:
        _add_date(component, "DTEND", _date_value(start + duration, zone, False), zone_name)
    if event.get("title"):
        component.add("SUMMARY", event["title"])
    if event.get("description"):
        component.add("DESCRIPTION", event["description"])
    status = event.get("status")
    if status and (status != "confirmed" or _had(base_component, "STATUS")):
        component.add("STATUS", status.upper())
    free_busy = event.get("freeBusyStatus") or "busy"
    if free_busy == "free" or _had(base_component, "TRANSP"):
        component.add("TRANSP", "TRANSPARENT" if free_busy == "free" else "OPAQUE")
    privacy = event.get("privacy") or "public"  # null is the default
    if privacy != "public" or _had(base_component, "CLASS"):
        component.add("CLASS", PRIVACY[privacy])
    for location_id, location in (event.get("locations") or {}).items():
        params = {} if location_id == "1" else {"X-JMAP-ID": location_id}
        component.add("LOCATION", location.get("name", ""), parameters=params)
    if event.get("keywords"):
        component.add("CATEGORIES", list(event["keywords"]))
    if event.get("color"):
        component.add("COLOR", event["color"])
    if event.get("priority"):
        component.add("PRIORITY", event["priority"])
    if event.get("sequence") or _had(base_component, "SEQUENCE"):
        component.add("SEQUENCE", event.get("sequence") or 0)
    _write_participants(component, event, base_component)
    _write_alerts(component, event, base_component)
    return zone, is_date, zone_name


def _had(component: Any | None, name: str) -> bool:
    return component is not None and name in component


def _write_participants(component: Any, event: dict[str, Any], base: Any | None) -> None:
    old_params: dict[str, Any] = {}
    if base is not None:
        for prop in _values(base, "ATTENDEE"):
            old_params[_address_key(str(prop))] = prop.params
    reply_to = event.get("replyTo") or {}
    organizer_address = reply_to.get("imip") if isinstance(reply_to, dict) else None
    for person in (event.get("participants") or {}).values():
        address = _address_of(person)
        assert address is not None  # check() made sure
        roles = person.get("roles") or {"attendee": True}
        if roles.get("owner"):
            organizer_address = address
            cn = _parameter_text(person.get("name") or "")
            params = {"CN": cn} if cn else {}
            component.add("ORGANIZER", icalendar.vCalAddress(address), parameters=params)
            if set(roles) == {"owner"}:
                continue
        kept = {
            k: v
            for k, v in dict(old_params.get(_address_key(address), {})).items()
            if k not in ("CN", "ROLE", "PARTSTAT", "RSVP", "CUTYPE")
        }
        params = dict(kept)
        if _parameter_text(person.get("name") or ""):
            params["CN"] = _parameter_text(person["name"])
        if roles.get("chair"):
            params["ROLE"] = "CHAIR"
        elif roles.get("attendee"):
            # The default role (RFC 5545 §3.2.16): written only when it was there.
            if "ROLE" in old_params.get(_address_key(address), {}):
                params["ROLE"] = "REQ-PARTICIPANT"
        elif roles.get("optional"):
            params["ROLE"] = "OPT-PARTICIPANT"
        elif roles.get("informational"):
            params["ROLE"] = "NON-PARTICIPANT"
        params["PARTSTAT"] = str(person.get("participationStatus") or "needs-action").upper()
        if person.get("expectReply"):
            params["RSVP"] = "TRUE"
        if person.get("kind"):
            params["CUTYPE"] = KINDS[person["kind"]]
        component.add("ATTENDEE", icalendar.vCalAddress(address), parameters=params)
    if organizer_address and "ORGANIZER" not in component and event.get("participants"):
        component.add("ORGANIZER", icalendar.vCalAddress(_mailto(organizer_address)))


def _parameter_text(text: str) -> str:
    """A name as a CN parameter: without backslashes, which icalendar's parser takes for
    escapes inside parameters (a trailing one swallowed the next parameter)."""
    return text.replace("\\", "")


def _write_alerts(component: Any, event: dict[str, Any], base: Any | None) -> None:
    old: dict[str, Any] = {}
    if base is not None:
        for index, alarm in enumerate(
            (s for s in base.subcomponents if s.name == "VALARM"), start=1
        ):
            uid = str(alarm.get("UID", ""))
            old[uid if _ID.match(uid) else str(index)] = alarm
    for alert_id, alert in (event.get("alerts") or {}).items():
        alarm = icalendar.Alarm()
        previous = old.get(alert_id)
        if previous is not None:
            for name, value in previous.property_items(recursive=False):
                if name not in ("BEGIN", "END", "TRIGGER", "ACTION", "ACKNOWLEDGED", "UID"):
                    alarm.add(name, value, encode=False)
        alarm.add("UID", alert_id)
        action = alert.get("action", "display")
        alarm.add("ACTION", action.upper())
        trigger = alert["trigger"]
        if trigger["@type"] == "OffsetTrigger":
            offset = parse_duration(trigger["offset"], "offset", signed=True)
            params = {"RELATED": "END"} if trigger.get("relativeTo") == "end" else {}
            alarm.add("TRIGGER", offset, parameters=params)
        else:
            alarm.add(
                "TRIGGER", parse_utc(trigger["when"], "when"), parameters={"VALUE": "DATE-TIME"}
            )
        if "DESCRIPTION" not in alarm:
            alarm.add("DESCRIPTION", event.get("title") or "Reminder")
        if action == "email" and "SUMMARY" not in alarm:
            alarm.add("SUMMARY", event.get("title") or "Reminder")
        if alert.get("acknowledged"):
            alarm.add("ACKNOWLEDGED", parse_utc(alert["acknowledged"], "acknowledged"))
        component.add_component(alarm)


def _fresh(base_component: Any | None, name: str) -> Any:
    """A new component with the unmapped properties and subcomponents of the old one."""
    component = icalendar.Event()
    if base_component is None:
        return component
    for key, value in base_component.property_items(recursive=False):
        if key in ("BEGIN", "END") or key in MAPPED:
            continue
        component.add(key, value, encode=False)
    for sub in base_component.subcomponents:
        if sub.name != "VALARM":
            component.add_component(sub)
    return component


def to_icalendar(
    event: dict[str, Any],
    *,
    base: icalendar.Calendar | None = None,
    now: dt.datetime | None = None,
) -> icalendar.Calendar:
    """The calendar object of an Event (checked with :func:`check` first), written onto
    ``base`` (the stored object) so that what this module does not map is kept."""
    own_zones = (
        {str(tz.get("TZID", "")) for tz in base.walk("VTIMEZONE")} if base is not None else set()
    )
    check(
        event,
        allowed=("id", "calendarIds", "isDraft", "isOrigin", "utcStart", "utcEnd"),
        zones=own_zones,
    )
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    calendar = icalendar.Calendar()
    if base is not None:
        for key, value in base.property_items(recursive=False):
            if key not in ("BEGIN", "END", "METHOD"):
                calendar.add(key, value, encode=False)
    if "PRODID" not in calendar:
        calendar.add("PRODID", "-//Hirondelle//JMAP Calendars//EN")
    if "VERSION" not in calendar:
        calendar.add("VERSION", "2.0")
    base_master = master_of(base) if base is not None else None
    base_overrides: dict[str, Any] = {}
    if base is not None:
        for sub in base.subcomponents:
            if sub.name == "VEVENT" and "RECURRENCE-ID" in sub:
                original: Any = sub["RECURRENCE-ID"]
                base_overrides[format_local(original.dt)] = sub
    keep_duration = base_master is not None and "DURATION" in base_master
    master = _fresh(base_master, "VEVENT")
    master.add("UID", event["uid"])
    master.add("DTSTAMP", now)
    created = event.get("created")
    master.add("CREATED", parse_utc(created, "created") if created else now)
    master.add("LAST-MODIFIED", now)
    zone, is_date, zone_name = _write_fields(
        master, event, base_master, base, keep_duration=keep_duration
    )
    for rule in event.get("recurrenceRules") or []:
        master.add("RRULE", _rrule(rule, zone, is_date))
    old_rdates: set[str] = set()
    if base_master is not None:
        for prop in _values(base_master, "RDATE"):
            for item in getattr(prop, "dts", []):
                value = item.dt[0] if isinstance(item.dt, tuple) else item.dt
                old_rdates.add(format_local(_in_zone(value, zone)))
    overrides = event.get("recurrenceOverrides") or {}
    exdates: list[dt.datetime | dt.date] = []
    rdates: list[dt.datetime | dt.date] = []
    components = []
    body = {k: v for k, v in event.items() if k not in _NOT_PATCHABLE}
    for key in sorted(overrides):
        patch = overrides[key]
        local = parse_local(key, f"recurrenceOverrides/{key}")
        when = _date_value(local, zone, is_date)
        if patch.get("excluded"):
            exdates.append(when)
            continue
        if not event.get("recurrenceRules") or key in old_rdates or not patch:
            rdates.append(when)
        changes = {k: v for k, v in patch.items() if k != "excluded"}
        if not changes:
            continue
        patched = apply_patch({**body, "start": key}, changes, f"recurrenceOverrides/{key}")
        old = base_overrides.get(key) or base_overrides.get(
            format_local(_in_zone(when, None)) if isinstance(when, dt.date) else key
        )
        override = _fresh(old, "VEVENT")
        override.add("UID", event["uid"])
        override.add("DTSTAMP", now)
        _add_date(override, "RECURRENCE-ID", when, zone_name)
        _write_fields(override, patched, old, base, keep_duration=keep_duration)
        components.append(override)
    for name, values in (("RDATE", rdates), ("EXDATE", exdates)):
        if values:
            if isinstance(values[0], dt.datetime) and values[0].tzinfo is not None:
                if zone_name in _UTC_NAMES:
                    master.add(name, [v.astimezone(dt.UTC) for v in values])  # type: ignore[union-attr]
                else:
                    master.add(name, values, parameters={"TZID": zone_name})
            else:
                master.add(name, values)
    calendar.add_component(master)
    for component in components:
        calendar.add_component(component)
    # Time zones: the stored ones that are still used, and the IANA definition of new ones.
    used = {n for n in _zone_names(event) if n not in _UTC_NAMES}
    have: set[str] = set()
    if base is not None:
        for tz in base.subcomponents:
            if tz.name == "VTIMEZONE" and str(tz.get("TZID", "")) in used:
                calendar.add_component(tz)
                have.add(str(tz["TZID"]))
    for name in sorted(used - have):
        try:
            calendar.add_component(icalendar.Timezone.from_tzid(name))
        except Exception:  # a VTIMEZONE is optional when the TZID is an IANA name (RFC 7809)
            continue
    if base is not None:
        for sub in base.subcomponents:
            if sub.name not in ("VEVENT", "VTIMEZONE"):
                calendar.add_component(sub)
    return calendar


def _zone_names(event: dict[str, Any]) -> set[str]:
    names = {event.get("timeZone")}
    for patch in (event.get("recurrenceOverrides") or {}).values():
        if isinstance(patch, dict) and "timeZone" in patch:
            names.add(patch["timeZone"])
    return {n for n in names if isinstance(n, str)}


def normalized(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as :func:`to_jscalendar` would read it back after :func:`to_icalendar`
    (defaults filled in), for comparisons."""
    return to_jscalendar(to_icalendar(event))
