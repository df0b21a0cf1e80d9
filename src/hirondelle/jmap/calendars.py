"""JMAP Calendars (draft-ietf-jmap-calendars): Calendar and CalendarEvent on the CalDAV data.

- Calendar (draft §4): a calendar collection of the groupware service. name,
  description, color, sortOrder, timeZone are its CalDAV properties (displayname,
  calendar-description, Apple calendar-color/order, calendar-timezone); isSubscribed,
  isVisible and includeInAvailability are dead properties in a Hirondelle namespace, so
  CalDAV and JMAP share one collection. isDefault is the calendar scheduling delivers
  invitations to (RFC 6638 §9.2, ``scheduling._default_calendar``).
- CalendarEvent (draft §5): one VEVENT calendar object resource, read and written as a
  JSCalendar Event (RFC 8984) by :mod:`hirondelle.groupware.jscalendar`; every write goes
  through :meth:`GroupwareService.put` / ``delete`` (same validation, UID uniqueness,
  occurrence index, journal), with the RFC 6638 scheduling hook when
  ``sendSchedulingMessages`` is true.
- /changes read the journal kinds ``Calendar`` and ``CalendarObject`` (the schedule inbox
  and outbox, journaled as ``Calendar`` too, are left out); /query uses the occurrence
  index for after/before like a CalDAV time-range REPORT.

Deviations: an event is in exactly one calendar (``calendarIds`` with one id; changing it
moves the object, keeping its id); Calendar/set ``onSuccessSetIsDefault`` only
accepts the current default; sharing (shareWith), defaultAlerts and
CalendarEventNotification are not implemented.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import functools
import logging
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import icalendar

from hirondelle.errors import Refused
from hirondelle.groupware import calendar as calendar_rules
from hirondelle.groupware import jscalendar
from hirondelle.groupware.jscalendar import JSCalendarError
from hirondelle.groupware.scheduling import _default_calendar, resource_name
from hirondelle.groupware.service import ContentError
from hirondelle.jmap import ids, standard
from hirondelle.jmap.api import CALENDARS, Call, method
from hirondelle.jmap.errors import MethodError, SetError
from hirondelle.store.groupware import (
    CALENDAR,
    Collection,
    PreconditionFailed,
    Resource,
    ResourceSummary,
    UidConflict,
)

CALENDAR_PREFIX = "K"
EVENT_PREFIX = "V"
_INSTANCE = re.compile(r"^V(\d{1,18})_(\d{8}T\d{6})$")
log = logging.getLogger(__name__)

NAMESPACE = "urn:hirondelle:jmap-calendars"
_DEAD = {
    "isSubscribed": f"{{{NAMESPACE}}}isSubscribed",
    "isVisible": f"{{{NAMESPACE}}}isVisible",
    "includeInAvailability": f"{{{NAMESPACE}}}includeInAvailability",
}
MY_RIGHTS = {
    "mayReadFreeBusy": True,
    "mayReadItems": True,
    "mayWriteAll": True,
    "mayWriteOwn": True,
    "mayUpdatePrivate": True,
    "mayRSVP": True,
    "mayAdmin": True,
    "mayDelete": True,
}
CALENDAR_PROPERTIES = (
    "id",
    "name",
    "description",
    "color",
    "sortOrder",
    "isSubscribed",
    "isVisible",
    "isDefault",
    "includeInAvailability",
    "defaultAlertsWithTime",
    "defaultAlertsWithoutTime",
    "timeZone",
    "shareWith",
    "myRights",
)
EVENT_PROPERTIES = (
    "id",
    "calendarIds",
    "isDraft",
    "isOrigin",
    "baseEventId",
    "recurrenceId",
    "recurrenceIdTimeZone",
    "utcStart",
    "utcEnd",
    *jscalendar.EVENT_PROPERTIES,
    "prodId",
)
# What /set may not change on an event, and what the server sets.
_SERVER_SET = (
    "id",
    "isOrigin",
    "baseEventId",
    "recurrenceId",
    "recurrenceIdTimeZone",
    "utcStart",
    "utcEnd",
)
SORT_PROPERTIES = ("start", "created", "updated", "uid", "title")
MAX_EXPANDED_INSTANCES = 10_000


def calendar_id(collection_id: int) -> str:
    return ids.encode(CALENDAR_PREFIX, collection_id)


def event_id(resource_id: int) -> str:
    return ids.encode(EVENT_PREFIX, resource_id)


def _instance_id(resource_id: int, recurrence_id: str) -> str:
    return f"{event_id(resource_id)}_{recurrence_id.replace('-', '').replace(':', '')}"


def _parse_event_id(value: str) -> tuple[int, str | None] | None:
    """(resource id, recurrence id as a LocalDateTime or None) of an event id."""
    plain = ids.decode(EVENT_PREFIX, value)
    if plain is not None:
        return plain, None
    match = _INSTANCE.match(value)
    if match is None or match.group(1) != str(int(match.group(1))):
        return None
    compact = match.group(2)
    local = (
        f"{compact[0:4]}-{compact[4:6]}-{compact[6:8]}T{compact[9:11]}:{compact[11:13]}:"
        f"{compact[13:15]}"
    )
    try:
        dt.datetime.fromisoformat(local)
    except ValueError:
        return None
    return int(match.group(1)), local


# -- Calendar -------------------------------------------------------------------------------


async def _calendars(call: Call) -> list[Collection]:
    found = await call.services.groupware.collections(call.account_id)
    return [c for c in found if c.kind == CALENDAR]


def _dead_value(dead: dict[str, str], name: str) -> str | None:
    text = dead.get(_DEAD[name])
    if text is None:
        return None
    try:
        return ET.fromstring(text).text or ""
    except ET.ParseError:
        return None


def _dead_element(name: str, value: str) -> str:
    element = ET.Element(_DEAD[name])
    element.text = value
    return ET.tostring(element, encoding="unicode")


def _time_zone_name(text: str | None) -> str | None:
    if not text:
        return None
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception:  # validated when written; an unreadable one has no name
        return None
    for tz in calendar.walk("VTIMEZONE"):
        return str(tz.get("TZID", "")) or None
    return None


def _calendar_json(
    collection: Collection, dead: dict[str, str], default: Collection | None
) -> dict[str, Any]:
    availability = _dead_value(dead, "includeInAvailability")
    return {
        "id": calendar_id(collection.id),
        "name": collection.display_name or collection.name,
        "description": collection.description or None,
        "color": collection.color,
        "sortOrder": collection.sort_order,
        "isSubscribed": _dead_value(dead, "isSubscribed") != "false",
        "isVisible": _dead_value(dead, "isVisible") != "false",
        "isDefault": default is not None and default.id == collection.id,
        "includeInAvailability": availability
        if availability in ("all", "attending", "none")
        else "all",
        "defaultAlertsWithTime": None,
        "defaultAlertsWithoutTime": None,
        "timeZone": _time_zone_name(collection.timezone),
        "shareWith": None,
        "myRights": dict(MY_RIGHTS),
    }


@method("Calendar/get", capability=CALENDARS)
async def calendar_get(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §4.1 Calendar/get."""
    args = standard.get_args(call, properties=CALENDAR_PROPERTIES)
    state = await standard.current_state(call)
    calendars = await _calendars(call)
    default = _default_calendar(calendars) if calendars else None
    dead = await call.services.groupware.properties([c.id for c in calendars])
    by_id = {calendar_id(c.id): c for c in calendars}
    wanted = list(by_id) if args.ids is None else args.ids
    objects = [
        _calendar_json(by_id[i], dead.get(by_id[i].id, {}), default) for i in wanted if i in by_id
    ]
    not_found = [i for i in wanted if i not in by_id] + args.unresolved
    return standard.get_response(
        call, state=state, objects=objects, not_found=not_found, properties=args.properties
    )


@method("Calendar/changes", capability=CALENDARS)
async def calendar_changes(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §4.2 Calendar/changes (RFC 8620 §5.2)."""
    response = await standard.changes(call, kind="Calendar", encode=calendar_id)
    # The schedule inbox and outbox are journaled as "Calendar" too: not calendars here.
    found = await call.services.groupware.collections(call.account_id)
    hidden = {calendar_id(c.id) for c in found if c.kind != CALENDAR}
    for key in ("created", "updated", "destroyed"):
        response[key] = [i for i in response[key] if i not in hidden]
    return response


def _calendar_values(
    properties: dict[str, Any], *, creating: bool
) -> tuple[dict[str, object], dict[str, str], list[str]]:
    """Checked Calendar properties -> (collection columns, dead properties to set,
    dead properties to remove); SetError invalidProperties."""
    values: dict[str, object] = {}
    dead: dict[str, str] = {}
    remove: list[str] = []
    for key, value in properties.items():
        if key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 255:
                raise SetError(
                    "invalidProperties", "name must be a non-empty string", properties=[key]
                )
            values["display_name"] = value
        elif key == "description":
            if value is not None and not isinstance(value, str):
                raise SetError(
                    "invalidProperties", "description must be a string", properties=[key]
                )
            values["description"] = value or ""
        elif key == "color":
            if value is not None and (not isinstance(value, str) or len(value) > 32):
                raise SetError("invalidProperties", "color must be a CSS color", properties=[key])
            values["color"] = value
        elif key == "sortOrder":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
                raise SetError(
                    "invalidProperties", "sortOrder must be an UnsignedInt", properties=[key]
                )
            values["sort_order"] = value
        elif key in ("isSubscribed", "isVisible"):
            if not isinstance(value, bool):
                raise SetError("invalidProperties", f"{key} must be a boolean", properties=[key])
            if value:
                remove.append(_DEAD[key])
            else:
                dead[_DEAD[key]] = _dead_element(key, "false")
        elif key == "includeInAvailability":
            if value not in ("all", "attending", "none"):
                raise SetError(
                    "invalidProperties",
                    "includeInAvailability is all, attending or none",
                    properties=[key],
                )
            dead[_DEAD[key]] = _dead_element(key, value)
        elif key == "timeZone":
            if value is None:
                values["timezone"] = None
            elif not jscalendar.valid_time_zone(value):
                raise SetError("invalidProperties", "unknown time zone", properties=[key])
            else:
                holder = icalendar.Calendar()
                holder.add("PRODID", "-//Hirondelle//JMAP Calendars//EN")
                holder.add("VERSION", "2.0")
                holder.add_component(icalendar.Timezone.from_tzid(value))
                values["timezone"] = holder.to_ical().decode("utf-8")
        elif key in ("defaultAlertsWithTime", "defaultAlertsWithoutTime", "shareWith"):
            if value is not None:
                raise SetError(
                    "invalidProperties", f"{key} is not supported here", properties=[key]
                )
        elif key in ("id", "isDefault", "myRights"):
            raise SetError("invalidProperties", f"{key} is set by the server", properties=[key])
        else:
            raise SetError("invalidProperties", f"unknown property {key!r}", properties=[key])
    if creating and "display_name" not in values:
        raise SetError("invalidProperties", "name is required", properties=["name"])
    return values, dead, remove


async def _set_loop(
    call: Call,
    *,
    extra_arguments: Sequence[str],
    create: Callable[[str, dict[str, Any]], Any] | None,
    update: Callable[[str, dict[str, Any]], Any] | None,
    destroy: Callable[[str], Any] | None,
) -> dict[str, Any]:
    """RFC 8620 §5.3 /set through the groupware service: each object is its own
    committed write (the service's), creates then updates then destroys. ``ifInState``
    is checked before the first write."""
    if_in_state, to_create, to_update, to_destroy = standard.set_arguments(
        call, extra_arguments=extra_arguments
    )
    old = await standard.current_state(call)
    if if_in_state is not None and str(if_in_state) != old:
        raise MethodError("stateMismatch", f"the state is {old}, not {call.args['ifInState']}")
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}

    def refusal(error: Exception) -> dict[str, Any]:
        if isinstance(error, SetError):
            return error.to_json()
        if isinstance(error, JSCalendarError):
            return SetError("invalidProperties", error.message, properties=[error.path]).to_json()
        if isinstance(error, ContentError):
            return SetError("invalidProperties", error.message, properties=[]).to_json()
        assert isinstance(error, Refused)
        from hirondelle.jmap.errors import set_error_of

        return set_error_of(error).to_json()

    errors = (SetError, JSCalendarError, ContentError, Refused)
    for creation_id, properties in to_create.items():
        assert create is not None
        try:
            new_id, extra = await create(creation_id, properties)
        except errors as error:
            not_created[creation_id] = refusal(error)
            continue
        call.created(creation_id, new_id)
        created[creation_id] = {"id": new_id, **extra}
    destroying = {call.resolve_id(raw) or raw for raw in to_destroy}
    for raw_id, patch in to_update.items():
        assert update is not None
        object_id = call.resolve_id(raw_id)
        if object_id is None:
            not_updated[raw_id] = SetError("notFound").to_json()
            continue
        if object_id in destroying:
            not_updated[raw_id] = SetError(
                "willDestroy", "the object is destroyed in the same call"
            ).to_json()
            continue
        try:
            updated[object_id] = await update(object_id, patch)
        except errors as error:
            not_updated[raw_id] = refusal(error)
    for raw_id in dict.fromkeys(to_destroy):
        assert destroy is not None
        object_id = call.resolve_id(raw_id)
        if object_id is None:
            not_destroyed[raw_id] = SetError("notFound").to_json()
            continue
        try:
            await destroy(object_id)
        except errors as error:
            not_destroyed[raw_id] = refusal(error)
            continue
        destroyed.append(object_id)
    new = await standard.current_state(call)
    return {
        "accountId": call.account_id_string,
        "oldState": old,
        "newState": new,
        "created": created or None,
        "updated": updated or None,
        "destroyed": destroyed or None,
        "notCreated": not_created or None,
        "notUpdated": not_updated or None,
        "notDestroyed": not_destroyed or None,
    }


@method("Calendar/set", capability=CALENDARS)
async def calendar_set(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §4.3 Calendar/set (``onDestroyRemoveEvents``)."""
    groupware = call.services.groupware
    remove_events = standard.boolean(call, "onDestroyRemoveEvents", default=False)
    make_default = call.args.get("onSuccessSetIsDefault")
    if make_default is not None:
        calendars = await _calendars(call)
        default = _default_calendar(calendars) if calendars else None
        if default is None or call.resolve_id(make_default) != calendar_id(default.id):
            raise standard.invalid(
                "onSuccessSetIsDefault",
                "the default calendar is the one invitations go to; it cannot be changed here",
            )

    async def find(object_id: str) -> Collection:
        number = ids.decode(CALENDAR_PREFIX, object_id)
        for collection in await _calendars(call):
            if collection.id == number:
                return collection
        raise SetError("notFound")

    async def create(creation_id: str, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        values, dead, _remove = _calendar_values(properties, creating=True)
        collection = await groupware.create_collection(
            call.account_id,
            kind=CALENDAR,
            name=uuid.uuid4().hex,
            display_name=str(values["display_name"]),
            description=str(values.get("description") or ""),
            color=values.get("color"),  # type: ignore[arg-type]
            sort_order=int(values.get("sort_order") or 0),  # type: ignore[call-overload]
            timezone=values.get("timezone"),  # type: ignore[arg-type]
            properties=dead or None,
        )
        calendars = await _calendars(call)
        default = _default_calendar(calendars)
        return calendar_id(collection.id), {
            "isDefault": default.id == collection.id,
            "myRights": dict(MY_RIGHTS),
            "isSubscribed": properties.get("isSubscribed", True),
            "isVisible": properties.get("isVisible", True),
            "includeInAvailability": properties.get("includeInAvailability", "all"),
            "sortOrder": properties.get("sortOrder", 0),
        }

    async def update(object_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        collection = await find(object_id)
        values, dead, remove = _calendar_values(patch, creating=False)
        await groupware.update_collection(
            collection, values=values, set_properties=dead, remove_properties=remove
        )
        return None

    async def destroy(object_id: str) -> None:
        collection = await find(object_id)
        if not remove_events and await groupware.resources(collection):
            raise SetError("calendarHasEvent", "the calendar still has events")
        await groupware.delete_collection(collection)

    return await _set_loop(
        call,
        extra_arguments=("onDestroyRemoveEvents", "onSuccessSetIsDefault"),
        create=create,
        update=update,
        destroy=destroy,
    )


# -- CalendarEvent ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    resource: Resource
    collection: Collection


_CACHE_SIZE = 2000
_cache: collections.OrderedDict[tuple[int, str], tuple[icalendar.Calendar, dict[str, Any]] | None]
_cache = collections.OrderedDict()
_cache_lock = threading.Lock()


def _converted(resource: Resource) -> tuple[icalendar.Calendar, dict[str, Any]] | None:
    """:func:`_convert` through a cache keyed by (resource id, ETag): a calendar view
    asks for the same objects again and again, and parsing is most of a query's time.
    What it returns is shared: callers copy before they change anything."""
    key = (resource.info.id, resource.info.etag)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    found = _convert(resource.data)
    with _cache_lock:
        _cache[key] = found
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _convert(data: str) -> tuple[icalendar.Calendar, dict[str, Any]] | None:
    """Parse a stored object and read its Event (None when it holds no VEVENT)."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
        return calendar, jscalendar.to_jscalendar(calendar)
    except Exception:  # stored objects were validated; one unreadable is skipped, not fatal
        log.warning("calendar object not readable as a JSCalendar Event", exc_info=True)
        return None


def _event_json(stored: _Stored, event: dict[str, Any], account_address: str) -> dict[str, Any]:
    result = dict(event)
    result["id"] = event_id(stored.resource.info.id)
    result["calendarIds"] = {calendar_id(stored.collection.id): True}
    result["isDraft"] = False
    organizer = (event.get("replyTo") or {}).get("imip")
    result["isOrigin"] = (
        organizer is None or organizer.lower() == f"mailto:{account_address}".lower()
    )
    result["baseEventId"] = None
    result["recurrenceId"] = None
    result["recurrenceIdTimeZone"] = None
    _utc_span(result, stored.collection)
    return result


def _utc_span(event: dict[str, Any], collection: Collection) -> None:
    """draft-ietf-jmap-calendars §5.1 utcStart/utcEnd (floating times in the calendar's
    time zone, as the occurrence index places them)."""
    if not event.get("start"):
        return
    try:
        zone = jscalendar._zone(event.get("timeZone"), None) or calendar_rules.zone_of(
            collection.timezone
        )
        start = dt.datetime.fromisoformat(event["start"]).replace(tzinfo=zone)
        length = jscalendar.parse_duration(event.get("duration") or "PT0S", "duration")
    except (JSCalendarError, ValueError):
        return  # a time zone only the object's VTIMEZONE knows: no UTC span offered
    event["utcStart"] = jscalendar.format_utc(start)
    event["utcEnd"] = jscalendar.format_utc(
        (start.replace(tzinfo=None) + length).replace(tzinfo=zone)
    )


def _reduce(
    event: dict[str, Any],
    *,
    address: str,
    after: dt.datetime | None,
    before: dt.datetime | None,
    reduce_participants: bool,
    zone: dt.tzinfo,
) -> dict[str, Any]:
    """CalendarEvent/get's recurrenceOverridesAfter/Before and reduceParticipants."""
    overrides = event.get("recurrenceOverrides")
    if overrides and (after is not None or before is not None):
        kept = {}
        for key, patch in overrides.items():
            when = dt.datetime.fromisoformat(key).replace(tzinfo=zone)
            if (after is None or when >= after) and (before is None or when < before):
                kept[key] = patch
        event["recurrenceOverrides"] = kept or None
    participants = event.get("participants")
    if reduce_participants and participants:
        me = address.lower()
        event["participants"] = {
            key: person
            for key, person in participants.items()
            if (person.get("roles") or {}).get("owner")
            or str(person.get("email", "")).lower() == me
        } or None
    return event


async def _stored_events(call: Call, numbers: Sequence[int] | None) -> list[_Stored]:
    """The account's VEVENT objects in its calendars (all, or those of ``numbers``)."""
    groupware = call.services.groupware
    calendars = {c.id: c for c in await _calendars(call)}
    if numbers is None:
        resources: list[Resource] = []
        for collection in calendars.values():
            resources.extend(await groupware.all(collection))
    else:
        resources = await groupware.by_ids(call.account_id, list(numbers)) if numbers else []
    return [
        _Stored(r, calendars[r.info.collection_id])
        for r in resources
        if r.info.collection_id in calendars and r.info.component == "VEVENT"
    ]


def _is_occurrence(
    calendar: icalendar.Calendar, event: dict[str, Any], recurrence_id: str, zone: dt.tzinfo
) -> bool:
    """Whether the series has an instance with this recurrence id."""
    overrides = event.get("recurrenceOverrides") or {}
    if recurrence_id in overrides:
        return not overrides[recurrence_id].get("excluded")
    if not event.get("recurrenceRules"):
        return False
    local = dt.datetime.fromisoformat(recurrence_id)
    master = jscalendar.master_of(calendar)
    start = master.get("DTSTART") if master is not None else None
    tz = start.dt.tzinfo if start is not None and isinstance(start.dt, dt.datetime) else None
    when = local.replace(tzinfo=tz or zone)
    lo, hi = when - dt.timedelta(seconds=1), when + dt.timedelta(days=1)
    for count, item in enumerate(calendar_rules.instances(calendar, "VEVENT", lo, hi, zone)):
        if count > 100:
            break
        if _recurrence_id_of(item, master) == recurrence_id:
            return True
    return False


def _recurrence_id_of(component: Any, master: Any) -> str:
    """The recurrence id (LocalDateTime in the master's time zone) of an expanded instance."""
    original = component.get("RECURRENCE-ID")
    value = original.dt if original is not None else component["DTSTART"].dt
    start = master.get("DTSTART") if master is not None else None
    zone = start.dt.tzinfo if start is not None and isinstance(start.dt, dt.datetime) else None
    if isinstance(value, dt.datetime) and value.tzinfo is not None and zone is not None:
        value = value.astimezone(zone)
    return jscalendar.format_local(value)


@method("CalendarEvent/get", capability=CALENDARS)
async def event_get(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §5.7 CalendarEvent/get (ids of expanded instances too)."""
    args = standard.get_args(
        call,
        properties=EVENT_PROPERTIES,
        extra_arguments=(
            "recurrenceOverridesAfter",
            "recurrenceOverridesBefore",
            "reduceParticipants",
        ),
    )
    bounds: dict[str, dt.datetime | None] = {}
    for name in ("recurrenceOverridesAfter", "recurrenceOverridesBefore"):
        value = call.args.get(name)
        try:
            bounds[name] = None if value is None else jscalendar.parse_utc(value, name)
        except JSCalendarError:
            raise standard.invalid(name, f"{name} must be a UTCDate") from None
    reduce_participants = standard.boolean(call, "reduceParticipants", default=False)
    state = await standard.current_state(call)
    wanted: dict[str, tuple[int, str | None]] = {}
    not_found = list(args.unresolved)
    if args.ids is not None:
        for raw in args.ids:
            parsed = _parse_event_id(raw)
            if parsed is None:
                not_found.append(raw)
            else:
                wanted[raw] = parsed
    numbers = None if args.ids is None else sorted({n for n, _ in wanted.values()})
    stored = await _stored_events(call, numbers)
    address = call.account.address

    def present(s: _Stored, event: dict[str, Any]) -> dict[str, Any]:
        try:
            zone = jscalendar._zone(event.get("timeZone"), None) or calendar_rules.zone_of(
                s.collection.timezone
            )
        except JSCalendarError:
            zone = dt.UTC
        reduced = _reduce(
            dict(event),
            address=address,
            after=bounds["recurrenceOverridesAfter"],
            before=bounds["recurrenceOverridesBefore"],
            reduce_participants=reduce_participants,
            zone=zone,
        )
        return _event_json(s, reduced, address)

    def build() -> tuple[list[dict[str, Any]], list[str]]:
        by_number = {s.resource.info.id: s for s in stored}
        converted: dict[int, tuple[icalendar.Calendar, dict[str, Any]] | None] = {
            n: _converted(s.resource) for n, s in by_number.items()
        }
        objects: list[dict[str, Any]] = []
        missing: list[str] = []
        if args.ids is None:
            for number, s in by_number.items():
                found = converted[number]
                if found is not None:
                    objects.append(present(s, found[1]))
            return objects, missing
        for raw, (number, recurrence_id) in wanted.items():
            one_stored = by_number.get(number)
            found = converted.get(number)
            if one_stored is None or found is None:
                missing.append(raw)
                continue
            s = one_stored
            calendar, event = found
            if recurrence_id is None:
                objects.append(present(s, event))
                continue
            zone = calendar_rules.zone_of(s.collection.timezone)
            if not _is_occurrence(calendar, event, recurrence_id, zone):
                missing.append(raw)
                continue
            one = present(s, jscalendar.instance(event, recurrence_id))
            one["id"] = raw
            one["baseEventId"] = event_id(number)
            one["recurrenceId"] = recurrence_id
            one["recurrenceIdTimeZone"] = event.get("timeZone")
            objects.append(one)
        return objects, missing

    objects, missing = await asyncio.get_running_loop().run_in_executor(None, build)
    return standard.get_response(
        call,
        state=state,
        objects=objects,
        not_found=not_found + missing,
        properties=args.properties,
    )


async def _event_changes(call: Call, found: dict[str, Any]) -> dict[str, Any]:
    """Keep only calendar events in created/updated (the schedule inbox's objects and
    VTODOs share the journal kind)."""
    numbers = [ids.decode(EVENT_PREFIX, i) for i in (*found["created"], *found["updated"])]
    present = await _stored_events(call, [n for n in numbers if n is not None])
    keep = {event_id(s.resource.info.id) for s in present}
    found["created"] = [i for i in found["created"] if i in keep]
    found["updated"] = [i for i in found["updated"] if i in keep]
    return found


@method("CalendarEvent/changes", capability=CALENDARS)
async def event_changes(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §5.8 CalendarEvent/changes (RFC 8620 §5.2)."""
    response = await standard.changes(call, kind="CalendarObject", encode=event_id)
    return await _event_changes(call, response)


async def _write(
    call: Call,
    collection: Collection,
    name: str,
    calendar: icalendar.Calendar,
    *,
    if_match: str | None,
    create: bool,
    schedule: bool,
) -> Resource:
    groupware = call.services.groupware
    data = calendar.to_ical()
    try:
        written = await groupware.put(
            call.account,
            collection,
            name,
            data,
            if_match=if_match,
            if_none_match=create,
            schedule=schedule,
        )
    except UidConflict as exc:
        holder = await groupware.info(collection, exc.name)
        error = SetError("alreadyExists", "an event with this uid is already in the calendar")
        if holder is not None:
            error.extra["existingId"] = event_id(holder.id)
        raise error from exc
    return Resource(written.info, data.decode("utf-8"))


@method("CalendarEvent/set", capability=CALENDARS)
async def event_set(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §5.9 CalendarEvent/set, through the groupware service
    (``sendSchedulingMessages``: the RFC 6638 hook, iMIP to remote attendees)."""
    groupware = call.services.groupware
    schedule = standard.boolean(call, "sendSchedulingMessages", default=False)

    async def calendar_of(value: object) -> Collection:
        calendars = await _calendars(call)
        if value is None:
            if not calendars:
                raise SetError(
                    "invalidProperties",
                    "the account has no calendar: create one first",
                    properties=["calendarIds"],
                )
            return _default_calendar(calendars)
        if not isinstance(value, dict) or any(v is not True for v in value.values()):
            raise SetError(
                "invalidProperties",
                "calendarIds maps calendar ids to true",
                properties=["calendarIds"],
            )
        chosen = [call.resolve_id(k) for k in value]
        if len(chosen) != 1:
            raise SetError(
                "invalidProperties",
                "an event is in exactly one calendar here",
                properties=["calendarIds"],
            )
        number = ids.decode(CALENDAR_PREFIX, chosen[0])
        for collection in calendars:
            if collection.id == number:
                return collection
        raise SetError("invalidProperties", "no such calendar", properties=["calendarIds"])

    async def load(
        object_id: str,
    ) -> tuple[_Stored, icalendar.Calendar, dict[str, Any], str | None]:
        parsed = _parse_event_id(object_id)
        if parsed is None:
            raise SetError("notFound")
        number, recurrence_id = parsed
        stored = await _stored_events(call, [number])
        if not stored:
            raise SetError("notFound")
        converted = await asyncio.to_thread(_converted, stored[0].resource)
        if converted is None:
            raise SetError("notFound")
        return stored[0], converted[0], converted[1], recurrence_id

    async def create(creation_id: str, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        for key in _SERVER_SET:
            if key in properties:
                raise SetError("invalidProperties", f"{key} is set by the server", properties=[key])
        collection = await calendar_of(properties.get("calendarIds"))
        event = {k: v for k, v in properties.items() if k not in ("calendarIds", "isDraft")}
        extra: dict[str, Any] = {}
        if "uid" not in event:
            event["uid"] = str(uuid.uuid4())
            extra["uid"] = event["uid"]
        calendar = await asyncio.to_thread(jscalendar.to_icalendar, event)
        name = resource_name(event["uid"])
        try:
            resource = await _write(
                call, collection, name, calendar, if_match=None, create=True, schedule=schedule
            )
        except PreconditionFailed:
            # The name is taken by an object with another UID: any free name will do.
            resource = await _write(
                call,
                collection,
                f"{uuid.uuid4().hex}.ics",
                calendar,
                if_match=None,
                create=True,
                schedule=schedule,
            )
        extra["calendarIds"] = {calendar_id(collection.id): True}
        extra["isOrigin"] = True
        return event_id(resource.info.id), extra

    async def move(stored: _Stored, target: Collection) -> None:
        """calendarIds changed: the object goes to the other calendar, same id."""
        name = stored.resource.name
        try:
            try:
                await groupware.relocate(stored.collection, name, target, name)
            except PreconditionFailed:
                await groupware.relocate(stored.collection, name, target, f"{uuid.uuid4().hex}.ics")
        except UidConflict as exc:
            holder = await groupware.info(target, exc.name)
            error = SetError("alreadyExists", "an event with this uid is in that calendar")
            if holder is not None:
                error.extra["existingId"] = event_id(holder.id)
            raise error from exc

    async def update(object_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        parsed = _parse_event_id(object_id)
        if parsed is not None and parsed[1] is not None:
            if "calendarIds" in patch:
                raise SetError(
                    "invalidProperties",
                    "an instance is in its series' calendar",
                    properties=["calendarIds"],
                )
            # A patch of one instance is a patch of its override (draft §5.9).
            patch = {f"recurrenceOverrides/{parsed[1]}/{k}": v for k, v in patch.items()}
        if "calendarIds" in patch:
            stored = (await load(object_id))[0]
            target = await calendar_of(patch["calendarIds"])
            if target.id != stored.collection.id:
                await move(stored, target)
        changes = {k: v for k, v in patch.items() if k not in ("calendarIds", "isDraft")}
        if not changes:
            return None
        for _attempt in range(3):
            stored, calendar, event, _recurrence_id = await load(object_id)
            if jscalendar.master_of(calendar) is None:
                # Only instances of someone else's series (an invitation to some
                # occurrences): written back as a master it would stop being that.
                raise SetError("forbidden", "this object holds only some instances of a series")
            for key in changes:
                head = key.split("/")[0]
                if head in _SERVER_SET or (head == "uid" and changes[key] != event.get("uid")):
                    raise SetError(
                        "invalidProperties", f"{head} cannot be changed", properties=[key]
                    )
            try:
                new = jscalendar.apply_patch(event, changes, "")
            except JSCalendarError as exc:
                raise SetError("invalidPatch", exc.message) from None
            if schedule and new.get("participants") and "sequence" not in changes:
                # RFC 5546 §2.1.4: a rescheduled or changed event gets a higher SEQUENCE.
                new["sequence"] = int(new.get("sequence") or 0) + 1
            rewritten = await asyncio.to_thread(
                functools.partial(jscalendar.to_icalendar, new, base=calendar)
            )
            try:
                await _write(
                    call,
                    stored.collection,
                    stored.resource.name,
                    rewritten,
                    if_match=stored.resource.etag,
                    create=False,
                    schedule=schedule,
                )
            except PreconditionFailed:
                continue  # changed by someone else in between: read it again
            return None
        raise SetError("forbidden", "the event keeps changing; try again")

    async def destroy(object_id: str) -> None:
        stored, _calendar, _event, recurrence_id = await load(object_id)
        if recurrence_id is not None:
            await update(object_id, {"excluded": True})
            return
        try:
            await groupware.delete(
                call.account,
                stored.collection,
                stored.resource.name,
                if_match=stored.resource.etag,
                schedule=schedule,
            )
        except PreconditionFailed:
            raise SetError("forbidden", "the event changed meanwhile; try again") from None

    return await _set_loop(
        call,
        extra_arguments=("sendSchedulingMessages",),
        create=create,
        update=update,
        destroy=destroy,
    )


# -- CalendarEvent/query -----------------------------------------------------------------------

_TEXT_FILTERS = ("text", "title", "description", "location", "uid")


@dataclass(frozen=True, slots=True)
class _Condition:
    in_calendars: frozenset[int] | None = None
    after: dt.datetime | None = None
    before: dt.datetime | None = None
    texts: tuple[tuple[str, str], ...] = ()


def _condition(value: dict[str, Any]) -> _Condition:
    """draft-ietf-jmap-calendars §5.10 FilterCondition (the members supported here)."""
    unknown = set(value) - {"inCalendars", "after", "before", *_TEXT_FILTERS}
    if unknown:
        raise MethodError("unsupportedFilter", f"unsupported filter members {sorted(unknown)}")
    in_calendars = None
    if "inCalendars" in value:
        raw = value["inCalendars"]
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise standard.invalid("filter", "inCalendars is an array of ids")
        in_calendars = frozenset(
            n for n in (ids.decode(CALENDAR_PREFIX, i) for i in raw) if n is not None
        )
    bounds: dict[str, dt.datetime] = {}
    for key in ("after", "before"):
        if key in value:
            try:
                bounds[key] = jscalendar.parse_utc(value[key], key)
            except JSCalendarError:
                raise standard.invalid("filter", f"{key} must be a UTCDate") from None
    texts = []
    for key in _TEXT_FILTERS:
        if key in value:
            if not isinstance(value[key], str):
                raise standard.invalid("filter", f"{key} must be a string")
            texts.append((key, value[key].casefold()))
    return _Condition(in_calendars, bounds.get("after"), bounds.get("before"), tuple(texts))


def _matches_text(event: dict[str, Any], key: str, needle: str) -> bool:
    if key == "uid":
        return str(event.get("uid", "")) == needle or str(event.get("uid", "")).casefold() == needle
    fields: list[str] = []
    if key in ("title", "text"):
        fields.append(event.get("title") or "")
    if key in ("description", "text"):
        fields.append(event.get("description") or "")
    if key in ("location", "text"):
        fields.extend(str(loc.get("name", "")) for loc in (event.get("locations") or {}).values())
    if key == "text":
        for person in (event.get("participants") or {}).values():
            fields.extend(str(person.get(k, "")) for k in ("name", "email"))
        fields.extend(event.get("keywords") or {})
    return any(needle in f.casefold() for f in fields)


@dataclass
class _Candidate:
    """One event of a query: its indexed columns, and its content when the filter or
    the expansion needs it (parsed once, through the conversion cache)."""

    summary: ResourceSummary
    collection: Collection
    zone: dt.tzinfo
    resource: Resource | None = None
    in_range: bool = False

    def converted(self) -> tuple[icalendar.Calendar, dict[str, Any]] | None:
        return None if self.resource is None else _converted(self.resource)


def _needs_content(node: Any, *, top: bool) -> bool:
    """Whether the filter reads more than the indexed columns (uid, title) and the
    top-level time range (answered by the occurrence index)."""
    if node is None:
        return False
    if isinstance(node, standard.FilterOperator):
        return any(_needs_content(c, top=False) for c in node.conditions)
    assert isinstance(node, _Condition)
    if not top and (node.after is not None or node.before is not None):
        return True
    return any(key not in ("uid", "title") for key, _ in node.texts)


def _evaluate(node: Any, candidate: _Candidate, *, top: bool) -> bool:
    if isinstance(node, standard.FilterOperator):
        results = [_evaluate(c, candidate, top=False) for c in node.conditions]
        if node.operator == "AND":
            return all(results)
        if node.operator == "OR":
            return any(results)
        return not any(results)
    assert isinstance(node, _Condition)
    summary = candidate.summary
    if node.in_calendars is not None and summary.collection_id not in node.in_calendars:
        return False
    if node.after is not None or node.before is not None:
        if top:
            if not candidate.in_range:
                return False
        else:
            converted = candidate.converted()
            if converted is None or not calendar_rules.matches_time_range(
                converted[0], "VEVENT", node.after, node.before, candidate.zone
            ):
                return False
    for key, needle in node.texts:
        if key == "uid":
            if summary.uid != needle and summary.uid.casefold() != needle:
                return False
        elif key == "title" and needle in summary.summary.casefold():
            continue
        else:
            converted = candidate.converted()
            if converted is None or not _matches_text(converted[1], key, needle):
                return False
    return True


async def _query_ids(
    call: Call, args: standard.QueryArgs, *, expand: bool, zone_name: str | None
) -> list[str]:
    """The full sorted result of a CalendarEvent/query: the indexed columns and the
    occurrence index answer inCalendars, uid, title, after/before and the sorts; only the
    other conditions, and the expansion of series, read and parse objects."""
    groupware = call.services.groupware
    calendars = await _calendars(call)
    top = args.filter if isinstance(args.filter, _Condition) else None
    if top is not None and top.in_calendars is not None:
        calendars = [c for c in calendars if c.id in top.in_calendars]
    ranged = top is not None and (top.after is not None or top.before is not None)
    if expand and (top is None or top.after is None or top.before is None):
        raise standard.invalid(
            "expandRecurrences", "expandRecurrences needs a filter condition with after and before"
        )
    override_zone = jscalendar._zone(zone_name, None) if zone_name else None
    by_collection = {c.id: c for c in calendars}
    summaries = [
        s for s in await groupware.summaries(list(by_collection)) if s.component == "VEVENT"
    ]
    content: dict[int, Resource] = {}
    exact: set[int] = set()
    to_check: list[Resource] = []
    if ranged:
        assert top is not None
        for collection in calendars:
            matched, unsure = await groupware.time_range(collection, top.after, top.before)
            exact.update(r.info.id for r in matched)
            content.update((r.info.id, r) for r in (*matched, *unsure))
            to_check.extend(r for r in unsure if r.info.component == "VEVENT")
        summaries = [s for s in summaries if s.id in content]
    needs_content = _needs_content(args.filter, top=True) or expand
    if needs_content and not ranged:
        # Conditions on content without a time range: every object is read (the cost
        # grows with the calendars; a client asks with after/before for views).
        for collection in calendars:
            content.update((r.info.id, r) for r in await groupware.all(collection))

    def zone_for(collection: Collection) -> dt.tzinfo:
        return override_zone or calendar_rules.zone_of(collection.timezone)

    def run() -> list[str]:
        in_range = set(exact)
        for resource in to_check:
            collection = by_collection[resource.info.collection_id]
            converted = _converted(resource)
            if converted is not None and calendar_rules.matches_time_range(
                converted[0],
                "VEVENT",
                top.after if top else None,
                top.before if top else None,
                zone_for(collection),
            ):
                in_range.add(resource.info.id)
        rows: list[tuple[str, ResourceSummary, int]] = []
        for summary in summaries:
            collection = by_collection[summary.collection_id]
            candidate = _Candidate(
                summary,
                collection,
                zone_for(collection),
                content.get(summary.id),
                summary.id in in_range,
            )
            if args.filter is not None and not _evaluate(args.filter, candidate, top=True):
                continue
            converted = candidate.converted() if expand else None
            if converted is not None and (
                converted[1].get("recurrenceRules") or converted[1].get("recurrenceOverrides")
            ):
                assert top is not None and top.after is not None and top.before is not None
                rows.extend(_instances(candidate, converted[0], top.after, top.before))
            else:
                rows.append((event_id(summary.id), summary, summary.first_start or 0))
        for comparator in reversed(args.sort or [standard.Comparator("start")]):
            rows.sort(key=lambda row: _sort_key(row, comparator.property))
            if not comparator.is_ascending:
                rows.reverse()
        return [row[0] for row in rows]

    return await asyncio.get_running_loop().run_in_executor(None, run)


def _instances(
    candidate: _Candidate, calendar: icalendar.Calendar, after: dt.datetime, before: dt.datetime
) -> list[tuple[str, ResourceSummary, int]]:
    """The instances of a series overlapping [after, before), with the draft's ids."""
    master = jscalendar.master_of(calendar)
    subs = [s for s in calendar.subcomponents if s.name == "VEVENT"]
    longest = max(
        (
            span[1] - span[0]
            for s in subs
            if (span := calendar_rules.instance_span(s, candidate.zone)) is not None
        ),
        default=dt.timedelta(0),
    )
    rows = []
    number = candidate.summary.id
    for count, item in enumerate(
        calendar_rules.instances(
            calendar, "VEVENT", after - longest - dt.timedelta(days=1), before, candidate.zone
        )
    ):
        if count >= MAX_EXPANDED_INSTANCES:
            raise MethodError("requestTooLarge", "too many instances in the window")
        span = calendar_rules.instance_span(item, candidate.zone)
        if span is None or not calendar_rules.overlaps(span, after, before):
            continue
        recurrence_id = _recurrence_id_of(item, master)
        rows.append(
            (_instance_id(number, recurrence_id), candidate.summary, calendar_rules.to_us(span[0]))
        )
    return rows


def _sort_key(row: tuple[str, ResourceSummary, int], prop: str) -> tuple[Any, ...]:
    """Sorts on the indexed columns: start (UTC), created and updated (when the server
    stored the object first and last), uid, title (SUMMARY, case-folded)."""
    object_id, summary, start = row
    if prop == "start":
        return (start, object_id)
    if prop == "created":
        return (summary.created_at, object_id)
    if prop == "updated":
        return (summary.updated_at, object_id)
    if prop == "uid":
        return (summary.uid, object_id)
    return (summary.summary.casefold(), object_id)


@method("CalendarEvent/query", capability=CALENDARS)
async def event_query(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §5.10 CalendarEvent/query (after/before from the
    occurrence index; ``expandRecurrences`` for an after/before window)."""
    args = standard.query_args(
        call,
        condition=_condition,
        sort_properties=SORT_PROPERTIES,
        extra_arguments=("expandRecurrences", "timeZone"),
    )
    expand = standard.boolean(call, "expandRecurrences", default=False)
    zone_name = call.args.get("timeZone")
    if zone_name is not None and not jscalendar.valid_time_zone(zone_name):
        raise standard.invalid("timeZone", "unknown time zone")
    state = await standard.current_state(call)
    result = await _query_ids(call, args, expand=expand, zone_name=zone_name)
    return standard.window(call, result, args, query_state=state, can_calculate_changes=not expand)


@method("CalendarEvent/queryChanges", capability=CALENDARS)
async def event_query_changes(call: Call) -> dict[str, Any]:
    """draft-ietf-jmap-calendars §5.11 CalendarEvent/queryChanges (RFC 8620 §5.6); not
    for expanded queries."""
    if call.args.get("expandRecurrences"):
        raise MethodError("cannotCalculateChanges", "expanded queries have no changes")
    zone_name = call.args.get("timeZone")
    if zone_name is not None and not jscalendar.valid_time_zone(zone_name):
        raise standard.invalid("timeZone", "unknown time zone")
    args = standard.QueryArgs(
        filter=standard.parse_filter(call.args.get("filter"), _condition),
        sort=standard.parse_sort(call.args.get("sort"), SORT_PROPERTIES),
        position=0,
        anchor=None,
        anchor_offset=0,
        limit=None,
        calculate_total=False,
    )

    async def current() -> tuple[list[str], str]:
        state = await standard.current_state(call)
        return await _query_ids(call, args, expand=False, zone_name=zone_name), state

    return await standard.query_changes(
        call,
        kind="CalendarObject",
        encode=event_id,
        current=current,
        condition=_condition,
        sort_properties=SORT_PROPERTIES,
        extra_arguments=("expandRecurrences", "timeZone"),
    )
